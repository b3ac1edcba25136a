namespace Caravan.Api.Connectors;

/// <summary>
/// Every message the connection string parsers return. They are constants on purpose: a connection
/// string holds a password, so no message may quote any part of the input.
/// </summary>
public static class ConnectionStringErrors
{
    public const string Unparseable = "The connection string could not be parsed.";
    public const string PostgresScheme = "Use a postgres:// or postgresql:// URI, or key=value pairs.";
    public const string MongoScheme = "Use a mongodb:// or mongodb+srv:// connection string.";
    public const string MultipleHosts = "Only one host is supported in a connection string.";
    public const string NoHost = "The connection string must name a host.";
    public const string NoServer = "The connection string must name a server.";
    public const string InvalidPort = "The port in the connection string must be a whole number from 1 to 65535.";
    public const string TcpOnly = "Only TCP connections are supported.";
    public const string SrvShape = "A mongodb+srv:// connection string takes one host name and no port.";

    private const string InvalidHostPrefix = "The host in the connection string is not valid: ";

    /// <summary>Wraps a <see cref="HostNames.Check"/> message, which is itself a constant.</summary>
    public static string InvalidHost(string hostMessage) => InvalidHostPrefix + hostMessage;
}

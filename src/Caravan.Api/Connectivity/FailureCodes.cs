namespace Caravan.Api.Connectivity;

/// <summary>The stable failure codes of connection tests and discovery; clients may switch on them.</summary>
public static class FailureCodes
{
    public const string HostUnresolvable = "host_unresolvable";
    public const string EgressDenied = "egress_denied";
    public const string PortClosed = "port_closed";
    public const string Timeout = "timeout";
    public const string TlsFailed = "tls_failed";

    /// <summary>The server's certificate was refused by the source's <c>tls</c> settings (verify-ca, verify-full).</summary>
    public const string TlsVerifyFailed = "tls_verify_failed";
    public const string AuthFailed = "auth_failed";

    /// <summary>An SSH tunnel without a pinned host key: nothing was sent; the message has the fingerprint the bastion presented.</summary>
    public const string SshHostKeyUnknown = "ssh_hostkey_unknown";

    /// <summary>The bastion presented another host key than the pinned one: nothing was sent.</summary>
    public const string SshHostKeyMismatch = "ssh_hostkey_mismatch";
    public const string DatabaseNotFound = "database_not_found";
    public const string InsufficientPrivilege = "insufficient_privilege";
    public const string DriverError = "driver_error";

    /// <summary>An answer passed Caravan's limit on its size (an MCP server's), and was not read further.</summary>
    public const string ResultTooLarge = "result_too_large";

    /// <summary>A file of a FILE source is still being converted, or could not be.</summary>
    public const string FileNotReady = "file_not_ready";
}

/// <summary>
/// A failure to reach or use a database, with its stable code and a short message for people.
/// <paramref name="step"/> names the step it belongs to when that is not the step that ran
/// (a TLS failure inside a driver's login, say).
/// </summary>
public sealed class ConnectivityException(string code, string message, Exception? inner = null, string? step = null)
    : Exception(message, inner)
{
    public string Code { get; } = code;

    public string? Step { get; } = step;
}

using Caravan.Api.Connectors.SqlServer;
using Caravan.Api.Connectors;

namespace Caravan.Api.Tests.ConnectionStrings;

public class SqlServerConnectionStringTests
{
    [Theory]
    [InlineData("Server=tcp:db.example.com,1433;Database=sales;User ID=app;Password=p@ss;Encrypt=True;", "db.example.com", 1433, "app", "p@ss", "sales")]
    [InlineData("Server=db.example.com", "db.example.com", null, null, null, null)]
    [InlineData("server=db.example.com,1434", "db.example.com", 1434, null, null, null)]
    [InlineData("Server = tcp: db.example.com , 1433 ;", "db.example.com", 1433, null, null, null)]
    [InlineData("Server=TCP:10.0.0.1", "10.0.0.1", null, null, null, null)]
    [InlineData("Data Source=db;Initial Catalog=sales;UID=app;PWD=x", "db", null, "app", "x", "sales")]
    [InlineData("Address=db;User=app", "db", null, "app", null, null)]
    [InlineData("Addr=db", "db", null, null, null, null)]
    [InlineData("Network Address=db", "db", null, null, null, null)]
    [InlineData("DATA SOURCE=db;INITIAL CATALOG=s", "db", null, null, null, "s")]
    [InlineData("Server=(local)", "localhost", null, null, null, null)]
    [InlineData("Server=.", "localhost", null, null, null, null)]
    [InlineData("Server=LOCALHOST,1433", "localhost", 1433, null, null, null)]
    [InlineData("Server=::1,1433", "::1", 1433, null, null, null)]
    [InlineData("Server=tcp:[2001:db8::1],1433", "2001:db8::1", 1433, null, null, null)]
    [InlineData("Server=db;Password=\"p;w=x\"", "db", null, null, "p;w=x", null)]
    [InlineData("Server=db;Password='it''s'", "db", null, null, "it's", null)]
    [InlineData("Server=db;Password=;Database=", "db", null, null, null, null)]
    [InlineData("Server=old;Data Source=db", "db", null, null, null, null)]
    [InlineData("Driver={ODBC Driver 18 for SQL Server};Server=tcp:host,1433;Database=x;Uid=u;Pwd={p;w};Encrypt=yes;", "host", 1433, "u", "p;w", "x")]
    [InlineData("Driver={ODBC Driver 18 for SQL Server};Server=host;Pwd={a}}b}", "host", null, null, "a}b", null)]
    [InlineData("DRIVER=SQL Server;SERVER=host;UID=u;PWD=pw", "host", null, "u", "pw", null)]
    [InlineData("Server={host};Database={my db}", "host", null, null, null, "my db")]
    public void Parses_connection_strings(string value, string host, int? port, string? user, string? password, string? database)
    {
        Assert.True(SqlServerConnectionString.TryParse(value, out var result, out var error), error);
        Assert.Null(error);
        Assert.Equal(host, result.Host);
        Assert.Equal(port, result.Port);
        Assert.Equal(user, result.Username);
        Assert.Equal(password, result.Password);
        Assert.Equal(database, result.Database);
    }

    [Fact]
    public void Keeps_other_keys_as_options_with_lower_cased_keys_and_original_values()
    {
        Assert.True(SqlServerConnectionString.TryParse(
            "Server=db;Encrypt=True;Application Name='My App';TrustServerCertificate=False;Connect Timeout=30",
            out var result,
            out _));
        Assert.Equal(
            [new("encrypt", "True"), new("application name", "My App"), new("trustservercertificate", "False"), new("connect timeout", "30")],
            result.Options.ToArray());
    }

    [Fact]
    public void Drops_the_odbc_driver_and_unbraces_option_values()
    {
        Assert.True(SqlServerConnectionString.TryParse(
            "Driver={ODBC Driver 18 for SQL Server};Server=db;Encrypt=yes;Application Name={a;b}",
            out var result,
            out _));
        Assert.Equal([new("encrypt", "yes"), new("application name", "a;b")], result.Options.ToArray());
    }

    [Theory]
    [InlineData(@"Server=db\SQLEXPRESS", "db", null, "SQLEXPRESS")]
    [InlineData(@"Server=tcp:db.example.com\Inst_1,1500", "db.example.com", 1500, "Inst_1")]
    [InlineData(@"Server=.\SQLEXPRESS", "localhost", null, "SQLEXPRESS")]
    [InlineData(@"Data Source=(local)\SQLEXPRESS", "localhost", null, "SQLEXPRESS")]
    public void Keeps_a_named_instance_as_an_option(string value, string host, int? port, string instance)
    {
        Assert.True(SqlServerConnectionString.TryParse(value, out var result, out var error), error);
        Assert.Equal(host, result.Host);
        Assert.Equal(port, result.Port);
        Assert.Equal(instance, result.Options["instance"]);
    }

    [Theory]
    [InlineData("Server=np:db", ConnectionStringErrors.TcpOnly)]
    [InlineData(@"Server=np:\\db\pipe\sql\query", ConnectionStringErrors.TcpOnly)]
    [InlineData("Server=lpc:db", ConnectionStringErrors.TcpOnly)]
    [InlineData("Server=LPC:(local)", ConnectionStringErrors.TcpOnly)]
    [InlineData("Server=via:db", ConnectionStringErrors.TcpOnly)]
    [InlineData(@"Server=(localdb)\MSSQLLocalDB", ConnectionStringErrors.TcpOnly)]
    [InlineData("Database=sales;User ID=app", ConnectionStringErrors.NoServer)]
    [InlineData("Server=;Database=sales", ConnectionStringErrors.NoServer)]
    [InlineData("Server=tcp:", ConnectionStringErrors.NoServer)]
    [InlineData("Server=,1433", ConnectionStringErrors.NoServer)]
    [InlineData("Server='  '", ConnectionStringErrors.NoServer)]
    [InlineData("Server=db_-", "The host in the connection string is not valid: Enter a valid host name or IP address.")]
    [InlineData("Server=db:1433", "The host in the connection string is not valid: Enter the port in the port field, not in the host name.")]
    [InlineData("Server=https://db", "The host in the connection string is not valid: Enter a host name or IP address without a scheme such as \"https://\".")]
    [InlineData("Server=db/x", "The host in the connection string is not valid: Enter a host name or IP address without a path.")]
    [InlineData("Server=d b", "The host in the connection string is not valid: A host name may not contain spaces or control characters.")]
    [InlineData("Server=db,0", ConnectionStringErrors.InvalidPort)]
    [InlineData("Server=db,65536", ConnectionStringErrors.InvalidPort)]
    [InlineData("Server=db,port", ConnectionStringErrors.InvalidPort)]
    [InlineData("Server=db,", ConnectionStringErrors.InvalidPort)]
    [InlineData("Server=db,1433,1434", ConnectionStringErrors.InvalidPort)]
    [InlineData(@"Server=db\", ConnectionStringErrors.Unparseable)]
    [InlineData(@"Server=db\a\b", ConnectionStringErrors.Unparseable)]
    [InlineData("", ConnectionStringErrors.Unparseable)]
    [InlineData(" \t", ConnectionStringErrors.Unparseable)]
    [InlineData("db.example.com", ConnectionStringErrors.Unparseable)]
    [InlineData("Server", ConnectionStringErrors.Unparseable)]
    [InlineData("=db", ConnectionStringErrors.Unparseable)]
    [InlineData("Server=db;Password=\"unterminated", ConnectionStringErrors.Unparseable)]
    [InlineData("Driver={x};Server=db;Pwd={unterminated", ConnectionStringErrors.Unparseable)]
    [InlineData("Server=db;Pwd={a}b}", ConnectionStringErrors.Unparseable)]
    public void Refuses_invalid_strings_with_a_specific_message(string value, string message)
    {
        Assert.False(SqlServerConnectionString.TryParse(value, out var result, out var error));
        Assert.Null(result);
        Assert.Equal(message, error);
    }

    [Fact]
    public void Messages_are_the_documented_texts()
    {
        Assert.Equal("The connection string must name a server.", ConnectionStringErrors.NoServer);
        Assert.Equal("Only TCP connections are supported.", ConnectionStringErrors.TcpOnly);
    }
}

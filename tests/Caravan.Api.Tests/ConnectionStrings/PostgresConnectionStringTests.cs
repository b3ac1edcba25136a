using Caravan.Api.Connectors.Postgres;
using Caravan.Api.Connectors;

namespace Caravan.Api.Tests.ConnectionStrings;

public class PostgresConnectionStringTests
{
    [Theory]
    [InlineData("postgresql://db.example.com", "db.example.com", null, null, null, null)]
    [InlineData("postgres://db.example.com", "db.example.com", null, null, null, null)]
    [InlineData("PostgreSQL://db.example.com/", "db.example.com", null, null, null, null)]
    [InlineData("postgresql://db.example.com:5433", "db.example.com", 5433, null, null, null)]
    [InlineData("postgresql://me@db.example.com/sales", "db.example.com", null, "me", null, "sales")]
    [InlineData("postgresql://me:secret@db.example.com:5432/sales", "db.example.com", 5432, "me", "secret", "sales")]
    [InlineData("postgresql://me:@db.example.com", "db.example.com", null, "me", null, null)]
    [InlineData("postgresql://m%40e:p%40ss%2Fw%3Ard%20x@db:1/my%20db", "db", 1, "m@e", "p@ss/w:rd x", "my db")]
    [InlineData("postgresql://me:p@ss@db.example.com/sales", "db.example.com", null, "me", "p@ss", "sales")]
    [InlineData("postgresql://me:pa+ss@db", "db", null, "me", "pa+ss", null)]
    [InlineData("postgresql://me:p%C3%A4ss@db", "db", null, "me", "päss", null)]
    [InlineData("postgresql://[::1]:5432/sales", "::1", 5432, null, null, "sales")]
    [InlineData("postgresql://[2001:db8::1]/sales", "2001:db8::1", null, null, null, "sales")]
    [InlineData("postgresql://10.0.0.1:65535", "10.0.0.1", 65535, null, null, null)]
    [InlineData("postgresql:///sales?host=db.example.com&port=6000", "db.example.com", 6000, null, null, "sales")]
    [InlineData("postgresql://?host=db&user=me&password=s%26cret&dbname=x", "db", null, "me", "s&cret", "x")]
    [InlineData("postgresql://other:1/old?host=db&port=2&dbname=new", "db", 2, null, null, "new")]
    [InlineData("postgresql://?hostaddr=10.0.0.1", "10.0.0.1", null, null, null, null)]
    [InlineData("postgresql://db?hostaddr=10.0.0.1", "db", null, null, null, null)]
    [InlineData("postgresql://db:", "db", null, null, null, null)]
    [InlineData("  postgresql://db/x  ", "db", null, null, null, "x")]
    public void Parses_uris(string value, string host, int? port, string? user, string? password, string? database)
    {
        Assert.True(PostgresConnectionString.TryParse(value, out var result, out var error), error);
        Assert.Null(error);
        Assert.Equal(host, result.Host);
        Assert.Equal(port, result.Port);
        Assert.Equal(user, result.Username);
        Assert.Equal(password, result.Password);
        Assert.Equal(database, result.Database);
    }

    [Theory]
    [InlineData("host=localhost", "localhost", null, null, null, null)]
    [InlineData("host=localhost port=5432 dbname=mydb user=me password=secret", "localhost", 5432, "me", "secret", "mydb")]
    [InlineData("host = localhost  port= 5432\tdbname =mydb", "localhost", 5432, null, null, "mydb")]
    [InlineData(@"host=db password='se cr\'et'", "db", null, null, "se cr'et", null)]
    [InlineData(@"host=db password='back\\slash'", "db", null, null, @"back\slash", null)]
    [InlineData(@"host=db password=a\ b", "db", null, null, "a b", null)]
    [InlineData("host=db password=''", "db", null, null, null, null)]
    [InlineData("host=db password= user=me", "db", null, null, "user=me", null)]
    [InlineData("host='db.example.com' user='me'", "db.example.com", null, "me", null, null)]
    [InlineData("HOST=db DbName=x", "db", null, null, null, "x")]
    [InlineData("hostaddr=10.0.0.1 port=1", "10.0.0.1", 1, null, null, null)]
    [InlineData("hostaddr=10.0.0.1 host=db", "db", null, null, null, null)]
    [InlineData("host=other host=db", "db", null, null, null, null)]
    [InlineData("host=::1", "::1", null, null, null, null)]
    [InlineData("host=[::1]", "::1", null, null, null, null)]
    [InlineData("host=db port=", "db", null, null, null, null)]
    [InlineData("host=db password=p%40ss", "db", null, null, "p%40ss", null)]
    public void Parses_keyword_strings(string value, string host, int? port, string? user, string? password, string? database)
    {
        Assert.True(PostgresConnectionString.TryParse(value, out var result, out var error), error);
        Assert.Null(error);
        Assert.Equal(host, result.Host);
        Assert.Equal(port, result.Port);
        Assert.Equal(user, result.Username);
        Assert.Equal(password, result.Password);
        Assert.Equal(database, result.Database);
    }

    [Fact]
    public void Keeps_other_uri_parameters_as_options_in_order()
    {
        Assert.True(PostgresConnectionString.TryParse(
            "postgresql://db/x?sslmode=require&Application_Name=my%20app&connect_timeout=10&&options=-c%20a%3Db",
            out var result,
            out _));
        Assert.Equal(
            [new("sslmode", "require"), new("application_name", "my app"), new("connect_timeout", "10"), new("options", "-c a=b")],
            result.Options.ToArray());
    }

    [Fact]
    public void Keeps_other_keywords_as_options_in_order()
    {
        Assert.True(PostgresConnectionString.TryParse(
            "sslmode=require host=db Application_Name='my app' user=me connect_timeout=10 sslmode=verify-full",
            out var result,
            out _));
        Assert.Equal(
            [new("sslmode", "verify-full"), new("application_name", "my app"), new("connect_timeout", "10")],
            result.Options.ToArray());
    }

    [Fact]
    public void Recognised_keys_do_not_appear_in_options()
    {
        Assert.True(PostgresConnectionString.TryParse(
            "host=db hostaddr=10.0.0.1 port=1 user=u password=p dbname=d",
            out var result,
            out _));
        Assert.Empty(result.Options);
    }

    [Theory]
    [InlineData("mysql://db.example.com/x", ConnectionStringErrors.PostgresScheme)]
    [InlineData("https://db.example.com", ConnectionStringErrors.PostgresScheme)]
    [InlineData("jdbc:postgresql://db/x", ConnectionStringErrors.Unparseable)]
    [InlineData("pgsql://db", ConnectionStringErrors.PostgresScheme)]
    [InlineData("postgresql://db1,db2/x", ConnectionStringErrors.MultipleHosts)]
    [InlineData("postgresql://db1:5432,db2:5433/x", ConnectionStringErrors.MultipleHosts)]
    [InlineData("postgresql:///x?host=db1,db2", ConnectionStringErrors.MultipleHosts)]
    [InlineData("postgresql://db/x?port=5432,5433", ConnectionStringErrors.MultipleHosts)]
    [InlineData("host=db1,db2", ConnectionStringErrors.MultipleHosts)]
    [InlineData("host=db hostaddr=10.0.0.1,10.0.0.2", ConnectionStringErrors.MultipleHosts)]
    [InlineData("postgresql://", ConnectionStringErrors.NoHost)]
    [InlineData("postgresql:///x", ConnectionStringErrors.NoHost)]
    [InlineData("postgresql://me:pw@/x", ConnectionStringErrors.NoHost)]
    [InlineData("postgresql://:5432/x", ConnectionStringErrors.NoHost)]
    [InlineData("postgresql://?host=", ConnectionStringErrors.NoHost)]
    [InlineData("dbname=x user=me", ConnectionStringErrors.NoHost)]
    [InlineData("host= ", ConnectionStringErrors.NoHost)]
    [InlineData("host=''", ConnectionStringErrors.NoHost)]
    [InlineData("postgresql://bad_-/x", "The host in the connection string is not valid: Enter a valid host name or IP address.")]
    [InlineData("postgresql://%2Fvar%2Frun%2Fpostgresql/x", "The host in the connection string is not valid: Enter a host name or IP address without a path.")]
    [InlineData("postgresql://db%20x/x", "The host in the connection string is not valid: A host name may not contain spaces or control characters.")]
    [InlineData("postgresql://[fe80::1%25eth0]/x", "The host in the connection string is not valid: Enter a valid host name or IP address.")]
    [InlineData("postgresql://[db]/x", "The host in the connection string is not valid: Enter a valid host name or IP address.")]
    [InlineData("host=/var/run/postgresql", "The host in the connection string is not valid: Enter a host name or IP address without a path.")]
    [InlineData("host=db:5432", "The host in the connection string is not valid: Enter the port in the port field, not in the host name.")]
    [InlineData("host=https://db", "The host in the connection string is not valid: Enter a host name or IP address without a scheme such as \"https://\".")]
    [InlineData("host=' db'", "The host in the connection string is not valid: Remove the leading or trailing spaces.")]
    [InlineData("postgresql://db:0/x", ConnectionStringErrors.InvalidPort)]
    [InlineData("postgresql://db:65536/x", ConnectionStringErrors.InvalidPort)]
    [InlineData("postgresql://db:99999999999/x", ConnectionStringErrors.InvalidPort)]
    [InlineData("postgresql://db:port/x", ConnectionStringErrors.InvalidPort)]
    [InlineData("postgresql://db:-1/x", ConnectionStringErrors.InvalidPort)]
    [InlineData("postgresql://[::1]:x/x", ConnectionStringErrors.InvalidPort)]
    [InlineData("postgresql://db/x?port=%2B5432", ConnectionStringErrors.InvalidPort)]
    [InlineData("host=db port=' 5432'", ConnectionStringErrors.InvalidPort)]
    [InlineData("host=db port=5432.0", ConnectionStringErrors.InvalidPort)]
    [InlineData("", ConnectionStringErrors.Unparseable)]
    [InlineData("   ", ConnectionStringErrors.Unparseable)]
    [InlineData("db.example.com", ConnectionStringErrors.Unparseable)]
    [InlineData("db.example.com:5432", ConnectionStringErrors.Unparseable)]
    [InlineData("host", ConnectionStringErrors.Unparseable)]
    [InlineData("host=db port", ConnectionStringErrors.Unparseable)]
    [InlineData("=db", ConnectionStringErrors.Unparseable)]
    [InlineData("host=db 'x'=1", ConnectionStringErrors.Unparseable)]
    [InlineData("host=db password='unterminated", ConnectionStringErrors.Unparseable)]
    [InlineData("host=db password='x'y", ConnectionStringErrors.Unparseable)]
    [InlineData(@"host=db password='x\", ConnectionStringErrors.Unparseable)]
    [InlineData(@"host=db password=x\", ConnectionStringErrors.Unparseable)]
    [InlineData("host=db;port=5432", "The host in the connection string is not valid: Enter a valid host name or IP address.")]
    [InlineData("Server=db;Database=x", ConnectionStringErrors.NoHost)]
    [InlineData("postgresql://me:p%zzss@db/x", ConnectionStringErrors.Unparseable)]
    [InlineData("postgresql://m%4@db/x", ConnectionStringErrors.Unparseable)]
    [InlineData("postgresql://db/x%", ConnectionStringErrors.Unparseable)]
    [InlineData("postgresql://db/x%00", ConnectionStringErrors.Unparseable)]
    [InlineData("postgresql://db/x%C3", ConnectionStringErrors.Unparseable)]
    [InlineData("postgresql://db/x?sslmode", ConnectionStringErrors.Unparseable)]
    [InlineData("postgresql://db/x?=1", ConnectionStringErrors.Unparseable)]
    [InlineData("postgresql://db/x?ssl%20mode=1", ConnectionStringErrors.Unparseable)]
    [InlineData("postgresql://db/x?a=%G1", ConnectionStringErrors.Unparseable)]
    [InlineData("postgresql://::1/x", ConnectionStringErrors.Unparseable)]
    [InlineData("postgresql://[::1/x", ConnectionStringErrors.Unparseable)]
    [InlineData("postgresql://[::1]5432/x", ConnectionStringErrors.Unparseable)]
    public void Refuses_invalid_strings_with_a_specific_message(string value, string message)
    {
        Assert.False(PostgresConnectionString.TryParse(value, out var result, out var error));
        Assert.Null(result);
        Assert.Equal(message, error);
    }

    [Fact]
    public void Messages_are_the_documented_texts()
    {
        Assert.Equal("Use a postgres:// or postgresql:// URI, or key=value pairs.", ConnectionStringErrors.PostgresScheme);
        Assert.Equal("Only one host is supported in a connection string.", ConnectionStringErrors.MultipleHosts);
        Assert.Equal("The connection string must name a host.", ConnectionStringErrors.NoHost);
        Assert.Equal("The port in the connection string must be a whole number from 1 to 65535.", ConnectionStringErrors.InvalidPort);
        Assert.Equal("The connection string could not be parsed.", ConnectionStringErrors.Unparseable);
    }

    [Fact]
    public void ToString_does_not_reveal_the_password()
    {
        Assert.True(PostgresConnectionString.TryParse("host=db user=me password=S3cr3tMarker sslpassword=S3cr3tMarker", out var result, out _));
        var text = result.ToString();
        Assert.DoesNotContain("S3cr3tMarker", text, StringComparison.Ordinal);
        Assert.Contains("Host = db", text, StringComparison.Ordinal);
        Assert.Contains("sslpassword", text, StringComparison.Ordinal);
    }
}

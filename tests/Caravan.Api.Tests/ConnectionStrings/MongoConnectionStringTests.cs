using Caravan.Api.Connectors.MongoDb;
using Caravan.Api.Connectors;

namespace Caravan.Api.Tests.ConnectionStrings;

public class MongoConnectionStringTests
{
    [Theory]
    [InlineData("mongodb://db.example.com", false, "db.example.com", null, false, null)]
    [InlineData("mongodb://db.example.com/", false, "db.example.com", null, false, null)]
    [InlineData("MongoDB://db.example.com:27017/app", false, "db.example.com:27017", null, false, "app")]
    [InlineData("mongodb://me:secret@db:27017/app?authSource=admin", false, "db:27017", "me", true, "app")]
    [InlineData("mongodb://me@db", false, "db", "me", false, null)]
    [InlineData("mongodb://me:@db", false, "db", "me", true, null)]
    [InlineData("mongodb://m%40e:p%40ss%3Aw%2Frd@db/my%20db", false, "db", "m@e", true, "my db")]
    [InlineData("mongodb://me:p@ss@db/app", false, "db", "me", true, "app")]
    [InlineData("mongodb://a:1,b:2,c/app", false, "a:1|b:2|c", null, false, "app")]
    [InlineData("mongodb://[::1]:27017,[2001:db8::1]/app", false, "::1:27017|2001:db8::1", null, false, "app")]
    [InlineData("mongodb://10.0.0.1:65535", false, "10.0.0.1:65535", null, false, null)]
    [InlineData("mongodb://db?replicaSet=rs0", false, "db", null, false, null)]
    [InlineData("mongodb://db/?replicaSet=rs0", false, "db", null, false, null)]
    [InlineData("mongodb+srv://cluster0.abcde.mongodb.net/app?retryWrites=true", true, "cluster0.abcde.mongodb.net", null, false, "app")]
    [InlineData("mongodb+srv://me:pw@cluster0.example.net", true, "cluster0.example.net", "me", true, null)]
    [InlineData("  MONGODB+SRV://cluster0.example.net/  ", true, "cluster0.example.net", null, false, null)]
    public void Parses_connection_strings(string value, bool isSrv, string hosts, string? user, bool hasPassword, string? database)
    {
        Assert.True(MongoConnectionString.TryParse(value, out var result, out var error), error);
        Assert.Null(error);
        Assert.Equal(isSrv, result.IsSrv);
        Assert.Equal(hosts, string.Join('|', result.Hosts.Select(h => h.Port is null ? h.Host : $"{h.Host}:{h.Port}")));
        Assert.Equal(user, result.Username);
        Assert.Equal(hasPassword, result.HasPassword);
        Assert.Equal(database, result.Database);
    }

    [Fact]
    public void Reports_hosts_and_ports_separately()
    {
        Assert.True(MongoConnectionString.TryParse("mongodb://a.example.com:27018,[::1]", out var result, out _));
        Assert.Equal([("a.example.com", (int?)27018), ("::1", null)], result.Hosts);
    }

    [Fact]
    public void Keeps_options_with_lower_cased_keys_and_decoded_values_in_order()
    {
        Assert.True(MongoConnectionString.TryParse(
            "mongodb://db/app?replicaSet=rs0&readPreferenceTags=dc%3Aeast&&appName=my%20app&replicaset=rs1",
            out var result,
            out _));
        Assert.Equal(
            [new("replicaset", "rs1"), new("readpreferencetags", "dc:east"), new("appname", "my app")],
            result.Options.ToArray());
    }

    [Theory]
    [InlineData("postgresql://db", ConnectionStringErrors.MongoScheme)]
    [InlineData("mongodb:/db", ConnectionStringErrors.MongoScheme)]
    [InlineData("mongo://db", ConnectionStringErrors.MongoScheme)]
    [InlineData("db.example.com:27017", ConnectionStringErrors.MongoScheme)]
    [InlineData("host=db", ConnectionStringErrors.MongoScheme)]
    [InlineData("mongodb://", ConnectionStringErrors.NoHost)]
    [InlineData("mongodb:///app", ConnectionStringErrors.NoHost)]
    [InlineData("mongodb://me:pw@/app", ConnectionStringErrors.NoHost)]
    [InlineData("mongodb://:27017", ConnectionStringErrors.NoHost)]
    [InlineData("mongodb+srv://", ConnectionStringErrors.NoHost)]
    [InlineData("mongodb+srv://a.example.net,b.example.net", ConnectionStringErrors.SrvShape)]
    [InlineData("mongodb+srv://cluster0.example.net:27017", ConnectionStringErrors.SrvShape)]
    [InlineData("mongodb+srv://[::1]:27017", ConnectionStringErrors.SrvShape)]
    [InlineData("mongodb+srv://[::1]", ConnectionStringErrors.SrvShape)]
    [InlineData("mongodb+srv://10.0.0.1/app", ConnectionStringErrors.SrvShape)]
    [InlineData("mongodb://db_-", "The host in the connection string is not valid: Enter a valid host name or IP address.")]
    [InlineData("mongodb://good,bad_-", "The host in the connection string is not valid: Enter a valid host name or IP address.")]
    [InlineData("mongodb://%2Ftmp%2Fmongodb-27017.sock", "The host in the connection string is not valid: Enter a valid host name or IP address.")]
    [InlineData("mongodb://[db]:1", "The host in the connection string is not valid: Enter a valid host name or IP address.")]
    [InlineData("mongodb+srv://bad_-", "The host in the connection string is not valid: Enter a valid host name or IP address.")]
    [InlineData("mongodb://db:0", ConnectionStringErrors.InvalidPort)]
    [InlineData("mongodb://db:65536", ConnectionStringErrors.InvalidPort)]
    [InlineData("mongodb://db:", ConnectionStringErrors.InvalidPort)]
    [InlineData("mongodb://db:x", ConnectionStringErrors.InvalidPort)]
    [InlineData("mongodb://a:1,b:-2", ConnectionStringErrors.InvalidPort)]
    [InlineData("mongodb://[::1]:", ConnectionStringErrors.InvalidPort)]
    [InlineData("", ConnectionStringErrors.Unparseable)]
    [InlineData("  ", ConnectionStringErrors.Unparseable)]
    [InlineData("mongodb://a,,b", ConnectionStringErrors.Unparseable)]
    [InlineData("mongodb://a,", ConnectionStringErrors.Unparseable)]
    [InlineData("mongodb://::1", ConnectionStringErrors.Unparseable)]
    [InlineData("mongodb://[::1", ConnectionStringErrors.Unparseable)]
    [InlineData("mongodb://[::1]x", ConnectionStringErrors.Unparseable)]
    [InlineData("mongodb://@db", ConnectionStringErrors.Unparseable)]
    [InlineData("mongodb://:pw@db", ConnectionStringErrors.Unparseable)]
    [InlineData("mongodb://me:p%zz@db", ConnectionStringErrors.Unparseable)]
    [InlineData("mongodb://m%4@db", ConnectionStringErrors.Unparseable)]
    [InlineData("mongodb://db/app%", ConnectionStringErrors.Unparseable)]
    [InlineData("mongodb://db/app?ssl", ConnectionStringErrors.Unparseable)]
    [InlineData("mongodb://db/app?=1", ConnectionStringErrors.Unparseable)]
    [InlineData("mongodb://db/app?a=%FF", ConnectionStringErrors.Unparseable)]
    public void Refuses_invalid_strings_with_a_specific_message(string value, string message)
    {
        Assert.False(MongoConnectionString.TryParse(value, out var result, out var error));
        Assert.Null(result);
        Assert.Equal(message, error);
    }

    [Fact]
    public void Messages_are_the_documented_texts()
    {
        Assert.Equal("Use a mongodb:// or mongodb+srv:// connection string.", ConnectionStringErrors.MongoScheme);
        Assert.Equal("A mongodb+srv:// connection string takes one host name and no port.", ConnectionStringErrors.SrvShape);
    }
}

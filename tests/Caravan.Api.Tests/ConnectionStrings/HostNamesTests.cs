using Caravan.Api.Connectors;

namespace Caravan.Api.Tests.ConnectionStrings;

public class HostNamesTests
{
    [Theory]
    [InlineData("localhost")]
    [InlineData("db")]
    [InlineData("db.example.com")]
    [InlineData("db.example.com.")]
    [InlineData("DB-1.Example.COM")]
    [InlineData("_srv._tcp.example.com")]
    [InlineData("a.b")]
    [InlineData("xn--bcher-kva.example")]
    [InlineData("3com.example")]
    [InlineData("0xdb.example.com")]
    [InlineData("example.0xg")]
    [InlineData("10.0.0.1")]
    [InlineData("0.0.0.0")]
    [InlineData("255.255.255.255")]
    [InlineData("::1")]
    [InlineData("::")]
    [InlineData("2001:db8::8a2e:370:7334")]
    [InlineData("2001:DB8:0:0:0:0:0:1")]
    [InlineData("::ffff:192.0.2.1")]
    [InlineData("[::1]")]
    [InlineData("[2001:db8::1]")]
    public void Accepts_valid_hosts(string host) => Assert.Null(HostNames.Check(host));

    [Fact]
    public void Accepts_names_at_the_length_limits()
    {
        var label = new string('a', 63);
        var name = string.Join('.', label, label, label, new string('b', 61));
        Assert.Equal(253, name.Length);
        Assert.Null(HostNames.Check(label));
        Assert.Null(HostNames.Check(name));
        Assert.Null(HostNames.Check(name + "."));
    }

    [Fact]
    public void Refuses_names_over_the_length_limits()
    {
        var label = new string('a', 63);
        Assert.Equal(HostNames.InvalidMessage, HostNames.Check(new string('a', 64)));
        Assert.Equal(HostNames.InvalidMessage, HostNames.Check(string.Join('.', label, label, label, new string('b', 62))));
    }

    [Theory]
    [InlineData("https://db.example.com", HostNames.SchemeMessage)]
    [InlineData("postgres://db.example.com:5432/x", HostNames.SchemeMessage)]
    [InlineData(" https://db.example.com", HostNames.SchemeMessage)]
    [InlineData(" db.example.com", HostNames.SpacesAroundMessage)]
    [InlineData("db.example.com ", HostNames.SpacesAroundMessage)]
    [InlineData("db.example.com\n", HostNames.SpacesAroundMessage)]
    [InlineData("\tdb", HostNames.SpacesAroundMessage)]
    [InlineData(" ", HostNames.SpacesAroundMessage)]
    [InlineData("db example.com", HostNames.SpacesInsideMessage)]
    [InlineData("db\u0000.example.com", HostNames.SpacesInsideMessage)]
    [InlineData("db\u007f", HostNames.SpacesInsideMessage)]
    [InlineData("db.example.com/", HostNames.PathMessage)]
    [InlineData("db.example.com/path", HostNames.PathMessage)]
    [InlineData("db.example.com?x=1", HostNames.PathMessage)]
    [InlineData("db.example.com#frag", HostNames.PathMessage)]
    [InlineData("db.example.com:5432/db", HostNames.PathMessage)]
    [InlineData("db.example.com:5432", HostNames.PortMessage)]
    [InlineData("10.0.0.1:5432", HostNames.PortMessage)]
    [InlineData("localhost:1", HostNames.PortMessage)]
    [InlineData("[::1]:5432", HostNames.PortMessage)]
    [InlineData("[2001:db8::1]:1433", HostNames.PortMessage)]
    [InlineData("", HostNames.InvalidMessage)]
    [InlineData("db.example.com:", HostNames.InvalidMessage)]
    [InlineData("db.example.com:abc", HostNames.InvalidMessage)]
    [InlineData(":5432", HostNames.InvalidMessage)]
    [InlineData("-db.example.com", HostNames.InvalidMessage)]
    [InlineData("db-.example.com", HostNames.InvalidMessage)]
    [InlineData("db..example.com", HostNames.InvalidMessage)]
    [InlineData(".db.example.com", HostNames.InvalidMessage)]
    [InlineData("db.example.com..", HostNames.InvalidMessage)]
    [InlineData(".", HostNames.InvalidMessage)]
    [InlineData("db@example.com", HostNames.InvalidMessage)]
    [InlineData("user:pass@db", HostNames.InvalidMessage)]
    [InlineData("db*.example.com", HostNames.InvalidMessage)]
    [InlineData("bücher.example", HostNames.InvalidMessage)]
    [InlineData("db\u200b.example.com", HostNames.InvalidMessage)]
    [InlineData("256.1.1.1", HostNames.InvalidMessage)]
    [InlineData("10.0.0", HostNames.InvalidMessage)]
    [InlineData("10.0.0.1.", HostNames.InvalidMessage)]
    [InlineData("10.0.0.1.2", HostNames.InvalidMessage)]
    [InlineData("010.0.0.1", HostNames.InvalidMessage)]
    [InlineData("1", HostNames.InvalidMessage)]
    [InlineData("example.123", HostNames.InvalidMessage)]
    [InlineData("0x7f000001", HostNames.InvalidMessage)]
    [InlineData("0X7F.1", HostNames.InvalidMessage)]
    [InlineData("example.0xab", HostNames.InvalidMessage)]
    [InlineData(":::", HostNames.InvalidMessage)]
    [InlineData("1::2::3", HostNames.InvalidMessage)]
    [InlineData("2001:db8::g", HostNames.InvalidMessage)]
    [InlineData("fe80::1%eth0", HostNames.InvalidMessage)]
    [InlineData("[fe80::1%eth0]", HostNames.InvalidMessage)]
    [InlineData("[::1", HostNames.InvalidMessage)]
    [InlineData("::1]", HostNames.InvalidMessage)]
    [InlineData("[]", HostNames.InvalidMessage)]
    [InlineData("[10.0.0.1]", HostNames.InvalidMessage)]
    [InlineData("[db.example.com]", HostNames.InvalidMessage)]
    [InlineData("[::1]:", HostNames.InvalidMessage)]
    [InlineData("[::1]x", HostNames.InvalidMessage)]
    public void Refuses_invalid_hosts_with_the_first_matching_message(string host, string message) =>
        Assert.Equal(message, HostNames.Check(host));

    [Fact]
    public void Messages_are_the_documented_texts()
    {
        Assert.Equal("Enter a host name or IP address without a scheme such as \"https://\".", HostNames.Check("https://x"));
        Assert.Equal("Remove the leading or trailing spaces.", HostNames.Check(" x"));
        Assert.Equal("A host name may not contain spaces or control characters.", HostNames.Check("x y"));
        Assert.Equal("Enter a host name or IP address without a path.", HostNames.Check("x/y"));
        Assert.Equal("Enter the port in the port field, not in the host name.", HostNames.Check("x:1"));
        Assert.Equal("Enter a valid host name or IP address.", HostNames.Check("x_-"));
    }

    [Theory]
    [InlineData("[::1]", "::1")]
    [InlineData("[2001:db8::1]", "2001:db8::1")]
    [InlineData("::1", "::1")]
    [InlineData("db.example.com", "db.example.com")]
    [InlineData("10.0.0.1", "10.0.0.1")]
    [InlineData("[", "[")]
    [InlineData("", "")]
    public void Normalize_strips_only_ipv6_brackets(string host, string expected) =>
        Assert.Equal(expected, HostNames.Normalize(host));
}

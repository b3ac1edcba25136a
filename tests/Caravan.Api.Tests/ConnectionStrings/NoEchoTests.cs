using Caravan.Api.Connectors.MongoDb;
using Caravan.Api.Connectors.SqlServer;
using Caravan.Api.Connectors.Postgres;
using Caravan.Api.Connectors;
using FsCheck;
using FsCheck.Xunit;

namespace Caravan.Api.Tests.ConnectionStrings;

/// <summary>
/// Connection strings hold passwords, so no error message may repeat any part of the input. The
/// strongest form of that is that every message comes from a fixed set; the marker checks make the
/// intent obvious and would catch a message built from the input even if it were added to the set.
/// </summary>
public class NoEchoTests
{
    private const string Marker = "S3cr3tMarker";

    private static readonly HashSet<string> KnownMessages =
    [
        ConnectionStringErrors.Unparseable,
        ConnectionStringErrors.PostgresScheme,
        ConnectionStringErrors.MongoScheme,
        ConnectionStringErrors.MultipleHosts,
        ConnectionStringErrors.NoHost,
        ConnectionStringErrors.NoServer,
        ConnectionStringErrors.InvalidPort,
        ConnectionStringErrors.TcpOnly,
        ConnectionStringErrors.SrvShape,
        ConnectionStringErrors.InvalidHost(HostNames.SchemeMessage),
        ConnectionStringErrors.InvalidHost(HostNames.SpacesAroundMessage),
        ConnectionStringErrors.InvalidHost(HostNames.SpacesInsideMessage),
        ConnectionStringErrors.InvalidHost(HostNames.PathMessage),
        ConnectionStringErrors.InvalidHost(HostNames.PortMessage),
        ConnectionStringErrors.InvalidHost(HostNames.InvalidMessage),
    ];

    public static TheoryData<string> PostgresErrorInputs =>
    [
        $"{Marker}://db",
        $"postgresql://u:{Marker}@db1,db2/x",
        $"host=db1,{Marker} password={Marker}",
        $"postgresql://u:{Marker}@/x",
        $"user=u password={Marker}",
        $"postgresql://u:{Marker}@{Marker}_-/x",
        $"postgresql://u:{Marker}@https%3A%2F%2F{Marker}/x",
        $"host=' {Marker}' password={Marker}",
        $"host='{Marker} x' password={Marker}",
        $"host={Marker}/x password={Marker}",
        $"host={Marker}:5432 password={Marker}",
        $"postgresql://u:{Marker}@db:{Marker}/x",
        $"postgresql://u:{Marker}@db:99999/x",
        $"host=db port={Marker} password={Marker}",
        $"host=db password='{Marker}",
        $"host=db password={Marker}\\",
        $"host=db {Marker}",
        $"{Marker}",
        $"postgresql://u:{Marker}%zz@db/x",
        $"postgresql://u:{Marker}@db/x?{Marker}",
        $"postgresql://u:{Marker}@[::1/x",
        $"postgresql://u:{Marker}@{Marker}::1/x",
    ];

    public static TheoryData<string> SqlServerErrorInputs =>
    [
        $"Server=np:{Marker};Password={Marker}",
        $@"Server=(localdb)\{Marker};Password={Marker}",
        $"Database={Marker};Password={Marker}",
        $"Server=;Password={Marker}",
        $"Server={Marker}_-;Password={Marker}",
        $"Server=https://{Marker};Password={Marker}",
        $"Server='{Marker} x';Password={Marker}",
        $"Server={Marker}/x;Password={Marker}",
        $"Server={Marker}:1433;Password={Marker}",
        $"Server=db,{Marker};Password={Marker}",
        $@"Server=db\{Marker}\x;Password={Marker}",
        $"Server=db;Password=\"{Marker}",
        $"Driver={{x}};Server=db;Pwd={{{Marker}",
        $"{Marker}",
        $"Server=db;{Marker}",
    ];

    public static TheoryData<string> MongoErrorInputs =>
    [
        $"{Marker}://u:{Marker}@db",
        $"mongodb://u:{Marker}@/x",
        $"mongodb+srv://u:{Marker}@a.{Marker}.net,b.{Marker}.net",
        $"mongodb+srv://u:{Marker}@{Marker}.net:27017",
        $"mongodb://u:{Marker}@{Marker}_-",
        $"mongodb://u:{Marker}@db:{Marker}",
        $"mongodb://u:{Marker}@db:99999",
        $"mongodb://u:{Marker}@db,,{Marker}",
        $"mongodb://u:{Marker}%zz@db",
        $"mongodb://:{Marker}@db",
        $"mongodb://u:{Marker}@db/{Marker}%",
        $"mongodb://u:{Marker}@db/x?{Marker}",
        $"mongodb://u:{Marker}@{Marker}::1",
    ];

    [Theory]
    [MemberData(nameof(PostgresErrorInputs))]
    public void Postgres_errors_do_not_echo_the_input(string value)
    {
        Assert.False(PostgresConnectionString.TryParse(value, out _, out var error));
        AssertSafe(error);
    }

    [Theory]
    [MemberData(nameof(SqlServerErrorInputs))]
    public void SqlServer_errors_do_not_echo_the_input(string value)
    {
        Assert.False(SqlServerConnectionString.TryParse(value, out _, out var error));
        AssertSafe(error);
    }

    [Theory]
    [MemberData(nameof(MongoErrorInputs))]
    public void Mongo_errors_do_not_echo_the_input(string value)
    {
        Assert.False(MongoConnectionString.TryParse(value, out _, out var error));
        AssertSafe(error);
    }

    [Fact]
    public void The_error_inputs_reach_every_message()
    {
        var reached = new HashSet<string>();
        foreach (var value in PostgresErrorInputs.Select(row => row.Data))
        {
            Assert.False(PostgresConnectionString.TryParse(value, out _, out var error));
            reached.Add(error);
        }

        foreach (var value in SqlServerErrorInputs.Select(row => row.Data))
        {
            Assert.False(SqlServerConnectionString.TryParse(value, out _, out var error));
            reached.Add(error);
        }

        foreach (var value in MongoErrorInputs.Select(row => row.Data))
        {
            Assert.False(MongoConnectionString.TryParse(value, out _, out var error));
            reached.Add(error);
        }

        Assert.Equal(KnownMessages.Order(StringComparer.Ordinal), reached.Order(StringComparer.Ordinal));
    }

    /// <summary>
    /// Random text spliced around the marker into the shapes each parser reads, so that every
    /// branch sees the marker in every position; parsing must never throw either.
    /// </summary>
    [Property(MaxTest = 2000)]
    public void No_parser_echoes_arbitrary_input(NonNull<string> before, NonNull<string> after, byte shape)
    {
        string[] shapes =
        [
            "{0}{1}{2}",
            "postgresql://u:{1}@{0}{2}/x?a={1}",
            "postgresql://{0}:{1}@db:{2}/{1}?{0}={2}",
            "host={0}{1} port={2} password='{1}{2}'",
            "host=db password={0}{1}{2}",
            "Server={0}{1}{2};Password={1}",
            "Driver={{x}};Server={0};Pwd={{{1}{2}}}",
            "Server=tcp:db,{2};Password=\"{0}{1}\"",
            "mongodb://u:{1}@{0}{2}/x?a={1}",
            "mongodb+srv://{0}:{1}@{2}{1}",
            "mongodb://{0},{1}:{2}/{1}",
        ];
        var value = string.Format(
            System.Globalization.CultureInfo.InvariantCulture,
            shapes[shape % shapes.Length],
            before.Get,
            Marker,
            after.Get);

        if (!PostgresConnectionString.TryParse(value, out _, out var error))
        {
            AssertSafe(error);
        }

        if (!SqlServerConnectionString.TryParse(value, out _, out error))
        {
            AssertSafe(error);
        }

        if (!MongoConnectionString.TryParse(value, out _, out error))
        {
            AssertSafe(error);
        }

        if (HostNames.Check(value) is { } hostMessage)
        {
            Assert.DoesNotContain(Marker, hostMessage, StringComparison.Ordinal);
        }
    }

    private static void AssertSafe(string? error)
    {
        Assert.NotNull(error);
        Assert.DoesNotContain(Marker, error, StringComparison.Ordinal);
        Assert.Contains(error, KnownMessages);
    }
}

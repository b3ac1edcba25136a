using System.Text.Json.Nodes;

namespace Caravan.Api.Tests.NetworkPaths;

/// <summary>
/// The ClickHouse that ./test.sh starts, on its HTTPS port (<c>CARAVAN_TEST_CLICKHOUSE_TLS</c>):
/// its certificate, signed by a private CA (<c>CARAVAN_TEST_CLICKHOUSE_TLS_CA</c>), names
/// 127.0.0.1 and not 127.0.0.2, where the server listens too. The login is the test user's.
/// </summary>
internal sealed class TlsClickHouse : ITlsServer
{
    public const string NoServer = "No ClickHouse over HTTPS: set CARAVAN_TEST_CLICKHOUSE_TLS and CARAVAN_TEST_CLICKHOUSE_TLS_CA (./test.sh does).";

    private static readonly string? Url = Environment.GetEnvironmentVariable("CARAVAN_TEST_CLICKHOUSE_TLS");

    public static bool Missing => string.IsNullOrEmpty(Url) || string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CARAVAN_TEST_CLICKHOUSE_TLS_CA"));

    public string AuthorityPem => File.ReadAllText(Environment.GetEnvironmentVariable("CARAVAN_TEST_CLICKHOUSE_TLS_CA")!);

    public string Password { get; } = Environment.GetEnvironmentVariable("CARAVAN_TEST_CLICKHOUSE_PASSWORD") ?? string.Empty;

    public string Body(string host, JsonObject? tls) => new JsonObject
    {
        ["type"] = "clickhouse", ["host"] = host, ["port"] = new Uri(Url!).Port,
        ["username"] = Environment.GetEnvironmentVariable("CARAVAN_TEST_CLICKHOUSE_USER"), ["password"] = Password, ["tls"] = tls,
    }.ToJsonString();
}

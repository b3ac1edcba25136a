using System.Security.Cryptography;
using System.Text;
using Caravan.Api.Connectivity;

namespace Caravan.Api.Connectors.ClickHouse;

/// <summary>
/// The HTTP clients CLICKHOUSE requests go through: one for sources without a <c>tls</c> group,
/// and one per distinct group (mode, CAs, client certificate and key), whose handler checks the
/// server's certificate with the group's callback and presents its client certificate, all in
/// memory. A client is shared only by sources whose groups are identical, so no request carries
/// another source's certificate or is accepted by another source's CA; beyond
/// <see cref="Limit"/> groups the least recently used client is dropped. A source reached through
/// an SSH tunnel gets clients of its own, whose connections all go to its tunnel's local port.
/// </summary>
public sealed class ClickHouseClients(NetworkPath network) : IDisposable
{
    private const int Limit = 64;

    private readonly HttpClient _plain = Client(network.HttpHandler());
    private readonly Dictionary<string, (HttpClient Client, long Used)> _byGroup = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>Whether requests for <paramref name="connection"/> use HTTPS: its <c>tls</c> group decides when it has one, <c>secure</c> otherwise.</summary>
    public static bool IsSecure(SourceConnection connection) =>
        connection.Text("tls.mode") is { } mode ? mode != NetworkPathFields.TlsDisable : ClickHouseType.IsSecure(connection);

    /// <summary>The client for <paramref name="connection"/>'s TLS settings, and its SSH tunnel's endpoint if it has one.</summary>
    public HttpClient For(SourceConnection connection, DatabaseEndpoint? tunnel = null)
    {
        var encrypted = connection.Text("tls.mode") is not (null or NetworkPathFields.TlsDisable);
        if (!encrypted && tunnel is null)
        {
            return _plain;
        }

        var key = (encrypted ? Key(connection) : "plain") + "|" + tunnel?.Key;
        lock (_lock)
        {
            if (_byGroup.TryGetValue(key, out var known))
            {
                _byGroup[key] = (known.Client, Environment.TickCount64);
                return known.Client;
            }
        }

        var handler = network.HttpHandler(tunnel);
        if (encrypted)
        {
            var tls = TlsSettings.Of(connection)!;
            handler.SslOptions.RemoteCertificateValidationCallback = tls.Callback();
            handler.SslOptions.ClientCertificates = tls.ClientCertificate is { } certificate ? [certificate] : null;
        }

        var created = Client(handler);
        lock (_lock)
        {
            if (_byGroup.TryGetValue(key, out var raced))
            {
                created.Dispose();
                return raced.Client;
            }

            if (_byGroup.Count >= Limit)
            {
                // Not disposed: a request may still be using it. Its pooled connections close when
                // idle (at most PooledConnectionLifetime), and the client is then collected.
                _byGroup.Remove(_byGroup.MinBy(entry => entry.Value.Used).Key);
            }

            _byGroup[key] = (created, Environment.TickCount64);
            return created;
        }
    }

    public void Dispose()
    {
        _plain.Dispose();
        lock (_lock)
        {
            foreach (var (client, _) in _byGroup.Values)
            {
                client.Dispose();
            }

            _byGroup.Clear();
        }
    }

    /// <summary>A digest of the group, so that the key (a secret) is not kept as a dictionary key.</summary>
    private static string Key(SourceConnection connection)
    {
        var group = string.Join('\0',
            connection.Text("tls.mode"), connection.Text("tls.ca_certificate"), connection.Text("tls.client_certificate"), connection.Secret("tls.client_key"));
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(group)));
    }

    private static HttpClient Client(SocketsHttpHandler handler)
    {
        // Header values are sent as UTF-8, so passwords outside ASCII reach the server as typed.
        handler.RequestHeaderEncodingSelector = (_, _) => Encoding.UTF8;
        return new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }
}

using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Hosting;
using Caravan.Api.Sources;
using Caravan.Api.Connectors;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>Stand-ins for database servers, and the pieces the drivers need, for tests without a database.</summary>
internal static class ConnectivityTestKit
{
    /// <summary>A TCP port on 127.0.0.1 with nothing listening (bound once, then released).</summary>
    public static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public static NetworkPath Network(EgressOptions? egress = null, ConnectivityOptions? connectivity = null) =>
        new(new EgressPolicy(Options.Create(egress ?? new EgressOptions())), Options.Create(connectivity ?? new ConnectivityOptions()));

    /// <summary>What Caravan would hand a driver for this create body (the type's parsing and defaults applied).</summary>
    public static SourceConnection Connection(string typeName, JsonObject body) =>
        TryConnection(typeName, body) ?? throw new InvalidOperationException("The body is not valid for " + typeName);

    /// <summary>The same, or null when a create with this body would be refused.</summary>
    public static SourceConnection? TryConnection(string typeName, JsonObject body)
    {
        var type = SourceTypes.Find(typeName)!;
        var errors = new ValidationErrors();
        // As from a request: values backed by parsed JSON, which is what the type's readers expect;
        // type and account_name are the route's, not the type's fields.
        var change = SourceBodies.ReadFields(type, JsonNode.Parse(body.ToJsonString())!.AsObject(), ChangeMode.Create, errors, "type", "account_name");
        if (errors.IsEmpty)
        {
            type.Check(change, null, errors);
        }

        return errors.IsEmpty ? SourceWriter.Unsaved(type, change) : null;
    }

    public static TestRun Run(SourceConnection connection, TimeSpan deadline) =>
        new(connection.Scrubber, deadline, CancellationToken.None);

    public static JsonNode Step(JsonNode report, string name) =>
        report["steps"]!.AsArray().Single(s => s!["name"]!.GetValue<string>() == name)!;

    public static string Status(JsonNode report, string name) => Step(report, name)["status"]!.GetValue<string>();

    public static string? Code(JsonNode report, string name) => Step(report, name)["code"]?.GetValue<string>();

    public static string Failed(JsonNode report) =>
        report["steps"]!.AsArray().Single(s => s!["status"]!.GetValue<string>() == "failed")!["name"]!.GetValue<string>();
}

/// <summary>Accepts connections and never says a word: a database that hangs.</summary>
internal sealed class SilentServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<Socket> _accepted = [];
    private readonly CancellationTokenSource _stop = new();

    public SilentServer()
    {
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptAsync();
    }

    public int Port { get; }

    public int Accepted
    {
        get
        {
            lock (_accepted)
            {
                return _accepted.Count;
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_accepted)
        {
            _accepted.ForEach(s => s.Dispose());
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                lock (_accepted)
                {
                    _accepted.Add(socket);
                }
            }
        }
        catch (Exception exception) when (exception is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }
}

/// <summary>
/// Starts TLS at once with a self-signed certificate no client trusts: what a TDS 8 (Encrypt=Strict)
/// SQL Server or a TLS MongoDB with an unknown certificate looks like to a client that checks.
/// </summary>
internal sealed class UntrustedTlsServer : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly X509Certificate2 _certificate;

    public UntrustedTlsServer()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=db.caravan.test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        _certificate = X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptAsync();
    }

    public int Port { get; }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _certificate.Dispose();
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                _ = HandshakeAsync(socket);
            }
        }
        catch (Exception exception) when (exception is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task HandshakeAsync(Socket socket)
    {
        using (socket)
        {
            await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
            try
            {
                await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificate = _certificate,
                    ApplicationProtocols = [new SslApplicationProtocol("tds/8.0")],
                }, _stop.Token);
                _ = await tls.ReadAsync(new byte[1], _stop.Token);
            }
            catch (Exception exception) when (exception is IOException or System.Security.Authentication.AuthenticationException or OperationCanceledException or ObjectDisposedException)
            {
            }
        }
    }
}

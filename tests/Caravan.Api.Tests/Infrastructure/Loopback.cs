using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Caravan.Api.Tests.Infrastructure;

/// <summary>Ports on the loopback interface.</summary>
public static class Loopback
{
    /// <summary>
    /// A port on 127.0.0.1 (or on <paramref name="address"/>) that was just bound and released: nothing
    /// listens there, so a connection to it is refused (a closed port), and a server may listen on it
    /// (a free port).
    /// </summary>
    public static int ClosedPort(IPAddress? address = null)
    {
        using var probe = new TcpListener(address ?? IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}

/// <summary>
/// A TCP listener that stands in for a database server: it accepts every connection, records the
/// local address it arrived on (the address the client connected to) and then does one thing with it,
/// chosen by how it was made: holds it open without a word (<see cref="Silent"/>), hangs up
/// (<see cref="HangingUp"/>), sends a fixed answer and hangs up (<see cref="Answering"/>), or starts
/// TLS with a certificate no client trusts (<see cref="UntrustedTls"/>).
/// </summary>
public sealed class LoopbackListener : IDisposable
{
    private readonly TcpListener _listener;
    private readonly Func<Socket, CancellationToken, Task> _serve;
    private readonly ConcurrentQueue<IPEndPoint> _arrivals = new();
    private readonly ConcurrentQueue<Socket> _open = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly IDisposable? _owned;

    private LoopbackListener(IPAddress address, int port, Func<Socket, CancellationToken, Task> serve, IDisposable? owned = null)
    {
        _serve = serve;
        _owned = owned;
        _listener = new TcpListener(address, port);
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            _listener.Server.DualMode = false;
        }

        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptAsync();
    }

    public int Port { get; }

    /// <summary>The local end of every accepted connection.</summary>
    public IReadOnlyCollection<IPEndPoint> Arrivals => _arrivals;

    /// <summary>How many connections it accepted.</summary>
    public int Accepted => _arrivals.Count;

    /// <summary>
    /// Accepts connections and never says a word: a database that hangs, or a host behind a firewall
    /// that drops packets, as a driver sees it once the TCP connection is up.
    /// </summary>
    public static LoopbackListener Silent(IPAddress? address = null, int port = 0) =>
        new(address ?? IPAddress.Loopback, port, (_, _) => Task.CompletedTask);

    /// <summary>Accepts connections and closes each at once.</summary>
    public static LoopbackListener HangingUp(IPAddress? address = null, int port = 0) =>
        new(address ?? IPAddress.Loopback, port, (socket, _) =>
        {
            socket.Dispose();
            return Task.CompletedTask;
        });

    /// <summary>Sends <paramref name="answer"/> on every connection, whatever the client said, and hangs up.</summary>
    public static LoopbackListener Answering(string answer)
    {
        var bytes = Encoding.ASCII.GetBytes(answer);
        return new(IPAddress.Loopback, 0, async (socket, stop) =>
        {
            using (socket)
            {
                try
                {
                    await socket.SendAsync(bytes, SocketFlags.None, stop);
                }
                catch (Exception exception) when (exception is SocketException or OperationCanceledException or ObjectDisposedException)
                {
                    // The client went first, or the listener stopped.
                }
            }
        });
    }

    /// <summary>
    /// Starts TLS at once with a self-signed certificate no client trusts: what a TDS 8 (Encrypt=Strict)
    /// SQL Server or a TLS MongoDB with an unknown certificate looks like to a client that checks.
    /// </summary>
    public static LoopbackListener UntrustedTls()
    {
        var certificate = Certificates.SelfSigned("db.caravan.test");
        return new(IPAddress.Loopback, 0, async (socket, stop) =>
        {
            using (socket)
            {
                await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
                try
                {
                    await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                    {
                        ServerCertificate = certificate,
                        ApplicationProtocols = [new SslApplicationProtocol("tds/8.0")],
                    }, stop);
                    _ = await tls.ReadAsync(new byte[1], stop);
                }
                catch (Exception exception) when (exception is IOException or AuthenticationException or OperationCanceledException or ObjectDisposedException)
                {
                    // The client refused the certificate, or the listener stopped.
                }
            }
        }, certificate);
    }

    /// <summary>Hanging-up listeners on 127.0.0.1 and ::1 with the same port; null where there is no IPv6 loopback or no common port was found.</summary>
    public static LoopbackPair? OnBothLoopbacks()
    {
        for (var attempt = 0; attempt < 20; attempt++)
        {
            LoopbackListener v4;
            try
            {
                v4 = HangingUp(IPAddress.Loopback);
            }
            catch (SocketException)
            {
                continue;
            }

            try
            {
                return new LoopbackPair(v4, HangingUp(IPAddress.IPv6Loopback, v4.Port));
            }
            catch (SocketException)
            {
                v4.Dispose();
            }
        }

        return null;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        while (_open.TryDequeue(out var socket))
        {
            socket.Dispose();
        }

        _owned?.Dispose();
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                _arrivals.Enqueue((IPEndPoint)socket.LocalEndPoint!);
                _open.Enqueue(socket);
                _ = _serve(socket, _stop.Token);
            }
        }
        catch (Exception exception) when (exception is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped.
        }
    }
}

/// <summary>Two listeners with one port, on 127.0.0.1 and on ::1.</summary>
public sealed record LoopbackPair(LoopbackListener V4, LoopbackListener V6) : IDisposable
{
    public void Dispose()
    {
        V4.Dispose();
        V6.Dispose();
    }
}

/// <summary>Certificates for stand-ins on TLS.</summary>
public static class Certificates
{
    /// <summary>A self-signed certificate for <paramref name="name"/>, which no client trusts.</summary>
    public static X509Certificate2 SelfSigned(string name)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(name);
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pfx), null);
    }
}

using System.Security.Cryptography.X509Certificates;
using Caravan.Api.Connectivity;
using Caravan.Api.Hosting;
using Microsoft.Data.SqlClient;

namespace Caravan.Api.Connectors.SqlServer;

/// <summary>
/// The <c>tls</c> group on MSSQL. SqlClient takes no validation callback, no CA and no client
/// certificate: it encrypts (<c>Encrypt</c>), checks the certificate against the system's CAs and
/// a host name (<c>HostNameInCertificate</c>), or trusts it blindly (<c>TrustServerCertificate</c>),
/// or accepts exactly one certificate read from a file (<c>ServerCertificate</c>). So
/// <c>ca_certificate</c> must be the server's own certificate, which is pinned through a private
/// file; a CA, a client certificate, and <c>verify-ca</c> against the system's CAs (SqlClient would
/// check the name all the same) are refused on write rather than applied differently.
/// </summary>
public static class SqlServerTls
{
    /// <summary>The refusals above, on the members they concern.</summary>
    public static void Check(GroupChange tls, ValidationErrors errors)
    {
        if (tls.Has("client_certificate") && !errors.Has(tls.Key("client_certificate")))
        {
            errors.Add(tls.Key("client_certificate"),
                "SQL Server does not log users in by TLS client certificate, and its client cannot send one: remove client_certificate and client_key.");
        }

        var pinned = tls.Text("ca_certificate");
        if (pinned is not null && !errors.Has(tls.Key("ca_certificate")) && !IsOneServerCertificate(pinned))
        {
            errors.Add(tls.Key("ca_certificate"),
                "SQL Server's client cannot trust a private CA; it can only pin the server's exact certificate. Give the server's own certificate (one PEM certificate, not a CA's), or leave ca_certificate out to use the system's CAs.");
        }

        if (tls.Text("mode") == NetworkPathFields.TlsVerifyCa && pinned is null && !errors.Has(tls.Key("mode")))
        {
            errors.Add(tls.Key("mode"),
                "SQL Server's client checks the host name whenever it checks a certificate against the system's CAs: choose verify-full (with the host name the certificate names), or pin the server's own certificate in ca_certificate.");
        }
    }

    /// <summary>
    /// Sets encryption as the group's mode asks: <c>disable</c> is <c>Encrypt=Optional</c> (the login
    /// is encrypted all the same, and a server that forces encryption encrypts the session),
    /// <c>require</c> is <c>Mandatory</c> trusting any certificate, the verifying modes are
    /// <c>Mandatory</c> with the certificate checked against <paramref name="host"/> (or pinned, see
    /// <see cref="Pin"/>). Without a group the builder keeps what the connection string said.
    /// </summary>
    public static void Configure(SqlConnectionStringBuilder builder, SourceConnection connection, string host)
    {
        switch (connection.Text("tls.mode"))
        {
            case null:
                return;
            case NetworkPathFields.TlsDisable:
                builder.Encrypt = SqlConnectionEncryptOption.Optional;
                builder.TrustServerCertificate = false;
                break;
            case NetworkPathFields.TlsRequire:
                builder.Encrypt = SqlConnectionEncryptOption.Mandatory;
                builder.TrustServerCertificate = true;
                break;
            default:
                builder.Encrypt = SqlConnectionEncryptOption.Mandatory;
                builder.TrustServerCertificate = false;
                // The name the user gave; an address is checked as the address connected to.
                builder.HostNameInCertificate = System.Net.IPAddress.TryParse(host, out _) ? string.Empty : host;
                break;
        }
    }

    /// <summary>
    /// Writes the group's pinned server certificate (public; never a key) to a file of its own, mode
    /// 0600 in a directory of its own, mode 0700, and points <c>ServerCertificate</c> at it. SqlClient
    /// reads it at each handshake, so it lives as long as the connection or pool built from
    /// <paramref name="builder"/>: dispose the result with it, which removes the directory. Null when
    /// nothing is pinned.
    /// </summary>
    public static PinnedCertificate? Pin(SqlConnectionStringBuilder builder, SourceConnection connection)
    {
        if (connection.Text("tls.mode") is null or NetworkPathFields.TlsDisable or NetworkPathFields.TlsRequire
            || connection.Text("tls.ca_certificate") is not { } pem)
        {
            return null;
        }

        var pinned = PinnedCertificate.Write(pem);
        builder.ServerCertificate = pinned.Path;
        return pinned;
    }

    /// <summary>
    /// A TLS failure that names the certificate, on a source whose group asks for it to be checked,
    /// is the group refusing it (<c>tls_verify_failed</c>); SqlClient's message says which check
    /// failed (an untrusted chain, a name it does not carry, a certificate other than the pinned one).
    /// </summary>
    public static ConnectivityException Refusal(ConnectivityException failure, SourceConnection connection) =>
        failure.Code == FailureCodes.TlsFailed
        && connection.Text("tls.mode") is NetworkPathFields.TlsVerifyCa or NetworkPathFields.TlsVerifyFull
        && (failure.Message.Contains("certificate", StringComparison.OrdinalIgnoreCase)
            || failure.Message.Contains("principal name", StringComparison.OrdinalIgnoreCase))
            ? new(FailureCodes.TlsVerifyFailed, "The server's certificate was refused: " + failure.Message, failure.InnerException, step: TestSteps.Tls)
            : failure;

    private static bool IsOneServerCertificate(string pem)
    {
        var certificates = TlsCertificates.Load(pem);
        try
        {
            return certificates.Count == 1
                && certificates[0].Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true };
        }
        finally
        {
            foreach (var certificate in certificates)
            {
                certificate.Dispose();
            }
        }
    }
}

/// <summary>A server certificate SqlClient reads from a file, in a private directory removed on dispose.</summary>
public sealed class PinnedCertificate : IDisposable, IAsyncDisposable
{
    private readonly string _directory;

    private PinnedCertificate(string directory, string path)
    {
        _directory = directory;
        Path = path;
    }

    public string Path { get; }

    public static PinnedCertificate Write(string pem)
    {
        // On Unix the directory is made with mode 0700, the file with 0600: no other user reads either.
        var directory = Directory.CreateTempSubdirectory("caravan-mssql-").FullName;
        var path = System.IO.Path.Combine(directory, "server.pem");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var writer = new StreamWriter(path, options))
        {
            writer.Write(pem);
        }

        return new PinnedCertificate(directory, path);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
            // Already removed.
        }
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}

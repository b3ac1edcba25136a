using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Caravan.Api.Connectors;

namespace Caravan.Api.Connectivity;

/// <summary>
/// A source's <c>tls</c> group, ready for a driver: the mode, the CA certificates and the client
/// certificate with its key, all in memory. Drivers that take a validation callback use
/// <see cref="Validate"/>, which checks the server's certificate the way libpq's modes do
/// (<c>require</c>: nothing; <c>verify-ca</c>: the chain ends at the CA, or at a system CA when
/// none is given; <c>verify-full</c>: and the certificate names the host) and throws
/// <see cref="TlsVerificationException"/> with the reason.
/// </summary>
public sealed class TlsSettings
{
    private TlsSettings(string mode, X509Certificate2Collection authorities, X509Certificate2? client)
    {
        Mode = mode;
        Authorities = authorities;
        ClientCertificate = client;
    }

    public string Mode { get; }

    public bool Encrypts => Mode != NetworkPathFields.TlsDisable;

    public bool VerifiesChain => Mode is NetworkPathFields.TlsVerifyCa or NetworkPathFields.TlsVerifyFull;

    public bool VerifiesName => Mode == NetworkPathFields.TlsVerifyFull;

    /// <summary>The CA certificates to trust instead of the system's; empty for the system's.</summary>
    public X509Certificate2Collection Authorities { get; }

    /// <summary>The client certificate with its private key, or null.</summary>
    public X509Certificate2? ClientCertificate { get; }

    /// <summary>The source's <c>tls</c> group, or null when it has none (the driver's own default applies).</summary>
    public static TlsSettings? Of(SourceConnection connection)
    {
        if (connection.Text("tls.mode") is not { } mode)
        {
            return null;
        }

        var authorities = connection.Text("tls.ca_certificate") is { } ca ? TlsCertificates.Load(ca) : [];
        var client = connection.Text("tls.client_certificate") is { } certificate && connection.Secret("tls.client_key") is { } key
            ? TlsCertificates.LoadClient(certificate, key)
            : null;
        return new TlsSettings(mode, authorities, client);
    }

    /// <summary>A validation callback for <see cref="SslStream"/> that applies <see cref="Validate"/>.</summary>
    public RemoteCertificateValidationCallback Callback() => (_, certificate, _, errors) => Validate(certificate, errors);

    /// <summary>
    /// A validation callback for a driver that opens its TLS session to the checked address rather
    /// than to the name (MySqlConnector names the address it was given): the name check is made
    /// here, against <paramref name="host"/>, the host name the user gave.
    /// </summary>
    public RemoteCertificateValidationCallback Callback(string host) => (_, certificate, _, errors) =>
        Validate(certificate, (errors & ~SslPolicyErrors.RemoteCertificateNameMismatch)
            | (certificate is null || Names(certificate, host) ? SslPolicyErrors.None : SslPolicyErrors.RemoteCertificateNameMismatch));

    /// <summary>What a skipped <c>tls</c> step says: the group's <c>disable</c>, or <paramref name="withoutGroup"/> for a source without one.</summary>
    public static string NotEncrypted(SourceConnection connection, string withoutGroup) =>
        connection.Text("tls.mode") is null ? withoutGroup : "tls.mode is disable; the connection is not encrypted.";

    /// <summary>What the <c>tls</c> step says of an encrypted session, given the group (null: none) it was opened with.</summary>
    public static string Encrypted(TlsSettings? tls, string? detail = null)
    {
        var encrypted = detail is null ? "The connection is encrypted" : $"The connection is encrypted ({detail})";
        return tls switch
        {
            { VerifiesName: true } => encrypted + "; the server's certificate is signed by the CA and names the host.",
            { VerifiesChain: true } => encrypted + "; the server's certificate is signed by the CA.",
            _ => encrypted + ".",
        };
    }

    /// <summary>
    /// Checks the server's certificate as <see cref="Mode"/> asks; <paramref name="errors"/> are .NET's
    /// findings against the host name the connection was opened for (its name check is the one used).
    /// True when the certificate is accepted; a refusal throws, so that its reason reaches the report.
    /// </summary>
    public bool Validate(X509Certificate? presented, SslPolicyErrors errors)
    {
        // require encrypts and checks nothing, as libpq's sslmode=require does without a root certificate.
        if (!VerifiesChain)
        {
            return true;
        }

        if (presented is null)
        {
            throw new TlsVerificationException("the server presented no certificate.");
        }

        using var certificate = new X509Certificate2(presented);
        using var chain = new X509Chain();
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (Authorities.Count > 0)
        {
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(Authorities);
            chain.ChainPolicy.ExtraStore.AddRange(Authorities);
        }

        if (!chain.Build(certificate))
        {
            var status = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
            throw new TlsVerificationException(
                $"the server's certificate ({certificate.Subject}, issued by {certificate.Issuer}) is not signed by "
                + (Authorities.Count > 0 ? "the CA in tls.ca_certificate" : "a CA this system trusts (set tls.ca_certificate)")
                + (status.Length > 0 ? $": {status}" : "."));
        }

        if (VerifiesName && errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            throw new TlsVerificationException(
                $"the server's certificate ({certificate.Subject}) does not name the host Caravan connected to; verify-full needs the host name the certificate was issued for.");
        }

        return true;
    }

    private static bool Names(X509Certificate presented, string host)
    {
        using var certificate = new X509Certificate2(presented);
        return certificate.MatchesHostname(host.Trim('[', ']'));
    }
}

/// <summary>The server's certificate was refused by a source's <c>tls</c> settings; the message says why.</summary>
public sealed class TlsVerificationException(string reason) : Exception(reason);

using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;

namespace Caravan.Api.Connectivity;

/// <summary>
/// The certificates of a source's <c>tls</c> group: checked on write, loaded in memory for the
/// drivers, and described (never repeated) by the config readback.
/// </summary>
public static class TlsCertificates
{
    /// <summary>A certificate that expires within this many days is flagged by the config readback.</summary>
    public static readonly TimeSpan ExpiresSoon = TimeSpan.FromDays(30);

    /// <summary>Why <paramref name="pem"/> is not one or more PEM certificates, or null when it is.</summary>
    public static string? Check(string pem)
    {
        try
        {
            return Load(pem).Count > 0 ? null : NotCertificates;
        }
        catch (CryptographicException)
        {
            return NotCertificates;
        }
    }

    /// <summary>Every certificate in <paramref name="pem"/>.</summary>
    public static X509Certificate2Collection Load(string pem)
    {
        var certificates = new X509Certificate2Collection();
        certificates.ImportFromPem(pem);
        return certificates;
    }

    /// <summary>The client certificate with its private key; throws <see cref="CryptographicException"/> when they do not make a pair.</summary>
    public static X509Certificate2 LoadClient(string certificatePem, string keyPem) => X509Certificate2.CreateFromPem(certificatePem, keyPem);

    /// <summary>Why a client certificate and key cannot be used together, or null when they can. The message repeats neither.</summary>
    public static string? CheckPair(string certificatePem, string keyPem)
    {
        try
        {
            using var pair = LoadClient(certificatePem, keyPem);
            return pair.HasPrivateKey ? null : NotAPair;
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            return NotAPair;
        }
    }

    /// <summary>What the config readback shows of each certificate: subject, issuer, <c>not_after</c>, and whether it expires within 30 days.</summary>
    public static JsonArray Describe(string pem, DateTimeOffset now)
    {
        var described = new JsonArray();
        foreach (var certificate in Load(pem))
        {
            using (certificate)
            {
                var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);
                described.Add(new JsonObject
                {
                    ["subject"] = certificate.Subject,
                    ["issuer"] = certificate.Issuer,
                    ["not_after"] = notAfter.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
                    ["expires_soon"] = notAfter - now < ExpiresSoon,
                });
            }
        }

        return described;
    }

    private const string NotCertificates = "Not a PEM certificate: send one or more -----BEGIN CERTIFICATE----- blocks.";

    private const string NotAPair =
        "Not the private key of client_certificate: send its unencrypted PEM key (PKCS#8, PKCS#1 or EC).";
}

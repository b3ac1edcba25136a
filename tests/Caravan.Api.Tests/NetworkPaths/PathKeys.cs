using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.NetworkPaths;

/// <summary>
/// Key material for the ssh_tunnel and tls groups: SSH keys made by <c>ssh-keygen</c> (the tool
/// users run; OpenSSH's own format, Ed25519 and an encrypted RSA key), and a private CA with a
/// server and a client certificate made by .NET.
/// </summary>
internal static class PathKeys
{
    /// <summary>An OpenSSH private key of <paramref name="type"/> (ed25519, ecdsa, rsa), encrypted with <paramref name="passphrase"/> when given, with its public key line.</summary>
    public static (string PrivateKey, string PublicKey) SshKey(string type, string? passphrase = null, bool pem = false)
    {
        var directory = Directory.CreateTempSubdirectory("caravan-sshkey-");
        try
        {
            var file = Path.Combine(directory.FullName, "key");
            var start = new ProcessStartInfo("ssh-keygen") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var argument in (string[])["-q", "-t", type, "-N", passphrase ?? string.Empty, "-C", "caravan-test", "-f", file, .. pem ? ["-m", "PEM"] : Array.Empty<string>()])
            {
                start.ArgumentList.Add(argument);
            }

            using var process = Process.Start(start)!;
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, "ssh-keygen failed: " + process.StandardError.ReadToEnd());
            return (File.ReadAllText(file), File.ReadAllText(file + ".pub").Trim());
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>The SHA256 fingerprint of a public key line, as <c>ssh-keygen -lf</c> prints it.</summary>
    public static string Fingerprint(string publicKeyLine) =>
        "SHA256:" + Convert.ToBase64String(SHA256.HashData(Convert.FromBase64String(publicKeyLine.Split(' ')[1]))).TrimEnd('=');

    /// <summary>A private CA, and certificates it signs.</summary>
    public sealed class Authority : IDisposable
    {
        private readonly RSA _key = RSA.Create(2048);

        public Authority(string name, DateTimeOffset? notAfter = null)
        {
            var request = new CertificateRequest($"CN={name}", _key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
            Certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), notAfter ?? DateTimeOffset.UtcNow.AddYears(2));
        }

        public X509Certificate2 Certificate { get; }

        public string CertificatePem => Certificate.ExportCertificatePem();

        /// <summary>A leaf certificate for <paramref name="name"/> (its subject, and its DNS and IP names), and its unencrypted PKCS#8 key.</summary>
        public (string CertificatePem, string KeyPem) Issue(string name, bool client = false, DateTimeOffset? notAfter = null)
        {
            using var key = RSA.Create(2048);
            var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            var names = new SubjectAlternativeNameBuilder();
            if (System.Net.IPAddress.TryParse(name, out var address))
            {
                names.AddIpAddress(address);
            }
            else
            {
                names.AddDnsName(name);
            }

            request.CertificateExtensions.Add(names.Build());
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
                [new Oid(client ? "1.3.6.1.5.5.7.3.2" : "1.3.6.1.5.5.7.3.1")], false));
            using var issued = request.Create(Certificate, DateTimeOffset.UtcNow.AddDays(-1), notAfter ?? DateTimeOffset.UtcNow.AddYears(1), RandomNumberGenerator.GetBytes(12));
            return (issued.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
        }

        public void Dispose()
        {
            Certificate.Dispose();
            _key.Dispose();
        }
    }

    /// <summary>
    /// A client certificate for <paramref name="name"/> (its CN) signed by a test server's CA, whose
    /// certificate and key files are named by <c>{prefix}_CA</c> and <c>{prefix}_CA_KEY</c>; and its key (PEM).
    /// </summary>
    public static (string CertificatePem, string KeyPem) ClientCertificate(string prefix, string name)
    {
        using var authority = X509Certificate2.CreateFromPemFile(
            Environment.GetEnvironmentVariable(prefix + "_CA")!, Environment.GetEnvironmentVariable(prefix + "_CA_KEY")!);
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        using var issued = request.Create(authority, authority.NotBefore, authority.NotAfter, RandomNumberGenerator.GetBytes(12));
        return (issued.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>The base64 lines of a PEM or OpenSSH key: any one found anywhere is a leak.</summary>
    public static IEnumerable<string> KeyLines(string pem) =>
        pem.Split('\n').Select(line => line.Trim()).Where(line => line.Length >= 60 && !line.StartsWith("-----", StringComparison.Ordinal));

    /// <summary>A distinctive password for a tunnel or a database (the scrubber masks any six characters of it in messages: keep the label short).</summary>
    public static string Password(string label) => Unique.Secret($"Pw-{label}-");
}

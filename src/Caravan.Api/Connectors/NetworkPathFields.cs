using Caravan.Api.Connectivity;
using Caravan.Api.Hosting;

namespace Caravan.Api.Connectors;

/// <summary>
/// The two groups of contract section 10 that every type with a host and a port takes:
/// <c>ssh_tunnel</c> (reach the database through a bastion) and <c>tls</c> (how the database's
/// certificate is checked, and the client certificate). Both are <see cref="FieldKind.Group"/>
/// fields, so they are read, merged, encrypted, audited and shown by the same code as any field.
/// </summary>
public static class NetworkPathFields
{
    public const string SshTunnel = "ssh_tunnel";
    public const string Tls = "tls";

    public const string TlsDisable = "disable";
    public const string TlsRequire = "require";
    public const string TlsVerifyCa = "verify-ca";
    public const string TlsVerifyFull = "verify-full";

    public static Field SshTunnelGroup { get; } = Field.Grouped(
        SshTunnel,
        "Extension: reach the database through an SSH bastion. Null removes the tunnel.",
        CheckTunnel,
        Field.Host("host", "The bastion's host name or IP address").AsRequired(),
        Field.Port(22) with { Description = "The bastion's SSH port" },
        Field.Text("username", "The SSH user").AsRequired(),
        Field.Secret("password", "The SSH user's password (or use private_key)"),
        Field.Secret("private_key", "OpenSSH or PEM private key: Ed25519, ECDSA or RSA (used with SHA-2)") with { MaxLength = 16 * 1024 },
        Field.Secret("private_key_passphrase", "The private key's passphrase, if it is encrypted"),
        Field.Text("host_key", "The bastion's host key: a SHA256: fingerprint (ssh-keyscan HOST | ssh-keygen -lf -) or an OpenSSH public key line; required to connect")
            with { MaxLength = 8192, Rule = SshHostKey.Check });

    public static Field TlsGroup { get; } = Field.Grouped(
        Tls,
        "Extension: TLS to the database. Null goes back to the driver's own default.",
        CheckTls,
        Field.Choice("mode", "disable, require (encrypt, check nothing), verify-ca (the server's certificate is signed by the CA) or verify-full (and names the host)",
            TlsDisable, TlsRequire, TlsVerifyCa, TlsVerifyFull).AsRequired(),
        Field.Certificate("ca_certificate", "PEM certificates of the CA that signs the server's certificate (without it: the system's CAs)", TlsCertificates.Check),
        Field.Certificate("client_certificate", "PEM client certificate, for servers that authenticate clients by certificate", TlsCertificates.Check),
        Field.Secret("client_key", "The client certificate's PEM private key (unencrypted PKCS#8, PKCS#1 or EC)") with { MaxLength = 16 * 1024 });

    /// <summary>Whether the configuration holds <paramref name="group"/> (any of its members).</summary>
    public static bool Holds(SourceConnection connection, string group) =>
        connection.Settings.Any(s => s.Key.StartsWith(group + ".", StringComparison.Ordinal))
        || connection.Secrets.Keys.Any(k => k.StartsWith(group + ".", StringComparison.Ordinal));

    /// <summary>
    /// The refusal of a source that holds a group its driver or engine does not honour: connecting
    /// without the bastion, or with less TLS than asked for, would send its credentials somewhere
    /// the user did not choose. Null when every group it holds is honoured.
    /// </summary>
    public static ConnectivityException? Unhonoured(SourceConnection connection, IReadOnlyCollection<string> applied)
    {
        foreach (var group in (string[])[SshTunnel, Tls])
        {
            if (!applied.Contains(group) && Holds(connection, group))
            {
                return new ConnectivityException(FailureCodes.DriverError,
                    $"Caravan cannot use {group} with {connection.Type.DisplayName} sources yet, and does not connect without it. Remove {group} to connect directly.",
                    step: TestSteps.Connect);
            }
        }

        return null;
    }

    private static void CheckTunnel(GroupChange tunnel, ValidationErrors errors)
    {
        var hasKey = tunnel.Has("private_key");
        if (!hasKey && !tunnel.Has("password") && !errors.Has(tunnel.Key("password")) && !errors.Has(tunnel.Key("private_key")))
        {
            errors.Add(SshTunnel, "Send password or private_key.");
        }

        if (!hasKey && tunnel.Has("private_key_passphrase"))
        {
            errors.Add(tunnel.Key("private_key_passphrase"), "A passphrase needs a private_key.");
        }

        if (hasKey && (tunnel.Sent("private_key") || tunnel.Sent("private_key_passphrase"))
            && !errors.Has(tunnel.Key("private_key")) && !errors.Has(tunnel.Key("private_key_passphrase"))
            && SshKeys.Check(tunnel.Secret("private_key")!, tunnel.Secret("private_key_passphrase")) is { } problem)
        {
            errors.Add(tunnel.Key(problem.Member), problem.Message);
        }
    }

    private static void CheckTls(GroupChange tls, ValidationErrors errors)
    {
        var hasCertificate = tls.Has("client_certificate");
        var hasKey = tls.Has("client_key");
        if (hasCertificate != hasKey)
        {
            var missing = hasCertificate ? "client_key" : "client_certificate";
            if (!errors.Has(tls.Key(missing)))
            {
                errors.Add(tls.Key(missing), "Send client_certificate and client_key together.");
            }
        }

        if (tls.Text("mode") == TlsDisable && (hasCertificate || tls.Has("ca_certificate")))
        {
            errors.Add(tls.Key("mode"), "TLS is disabled: remove the certificates, or choose require, verify-ca or verify-full.");
        }

        if (hasCertificate && hasKey && (tls.Sent("client_certificate") || tls.Sent("client_key"))
            && !errors.Has(tls.Key("client_certificate")) && !errors.Has(tls.Key("client_key"))
            && TlsCertificates.CheckPair(tls.Text("client_certificate")!, tls.Secret("client_key")!) is { } problem)
        {
            errors.Add(tls.Key("client_key"), problem);
        }
    }
}

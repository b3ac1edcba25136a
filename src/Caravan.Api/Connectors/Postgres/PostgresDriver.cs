using System.Net.Sockets;
using System.Security.Authentication;
using Npgsql;
using static Caravan.Api.Connectors.DriverFailures;
using Caravan.Api.Connectivity;

namespace Caravan.Api.Connectors.Postgres;

/// <summary>POSTGRES and SUPABASE through Npgsql, in read-only sessions named <c>caravan</c>.</summary>
public sealed class PostgresDriver(NetworkPath network, Microsoft.Extensions.Options.IOptions<ConnectivityOptions> options) : IDriver
{
    private const string SchemasQuery = """
        SELECT nspname FROM pg_catalog.pg_namespace
        WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'
        ORDER BY nspname
        """;

    public IReadOnlyCollection<SourceType> Types { get; } = [SourceTypes.Get<PostgresType>(), SourceTypes.Get<SupabaseType>()];

    public IReadOnlyCollection<string> AppliedGroups { get; } = [NetworkPathFields.Tls, NetworkPathFields.SshTunnel];

    public async Task TestAsync(TestRun run, SourceConnection connection)
    {
        if (await network.OpenAsync(run, connection) is not { } endpoint)
        {
            return;
        }

        await using var dataSource = DataSource(connection, endpoint, run.Remaining);
        await using var session = await run.StepAsync("authenticate", token => OpenAsync(dataSource, token));
        if (session is null)
        {
            return;
        }

        if (IsEncrypted(session))
        {
            run.Succeed("tls", TlsSettings.Encrypted(TlsSettings.Of(connection)));
        }
        else
        {
            run.Skip("tls", "The server did not use TLS (sslmode allows that); the connection is not encrypted.");
        }

        await run.StepAsync("query", token => Execute(() => ScalarAsync(session, "SELECT 1", token)));
        await run.StepAsync("schemas", token => Execute(() => ListAsync(session, token)));
    }

    public async Task<IReadOnlyList<string>> ListSchemasAsync(SourceConnection connection, CancellationToken cancellationToken)
    {
        var endpoint = await network.ReachAsync(connection, cancellationToken);
        // Npgsql does not abandon a silent handshake on cancellation: its own timeout must fit the deadline.
        await using var dataSource = DataSource(connection, endpoint, TimeSpan.FromSeconds(Math.Clamp(options.Value.TestTimeoutSeconds, 1, 60)));
        await using var session = await OpenAsync(dataSource, cancellationToken);
        return await Execute(() => ListAsync(session, cancellationToken));
    }

    /// <summary>
    /// A data source for one checked endpoint (an address, or an SSH tunnel's local port): the
    /// driver never resolves the name itself, while TLS still verifies the certificate against the
    /// host name the user gave.
    /// </summary>
    public static NpgsqlDataSource DataSource(
        SourceConnection connection, DatabaseEndpoint endpoint, TimeSpan limit, Action<NpgsqlConnectionStringBuilder>? adjust = null)
    {
        var seconds = (int)Math.Clamp(Math.Ceiling(limit.TotalSeconds), 1, 300);
        var options = connection.Options;
        var settings = new NpgsqlConnectionStringBuilder
        {
            Host = endpoint.Address.ToString(),
            Port = endpoint.Port,
            Username = connection.Text("username"),
            Password = connection.Secret("password"),
            Database = connection.Text("database_name"),
            ApplicationName = "caravan",
            Pooling = false,
            Timeout = seconds,
            CommandTimeout = seconds,
            Options = "-c default_transaction_read_only=on",
            SslMode = options.TryGetValue("sslmode", out var mode) ? ParseSslMode(mode) : SslMode.Prefer,
        };

        // The tls group wins over a connection string's sslmode. Npgsql is asked to encrypt only;
        // the certificate is checked by the group's own callback, against its CA held in memory.
        var tls = TlsSettings.Of(connection);
        if (tls is not null)
        {
            settings.SslMode = tls.Encrypts ? SslMode.Require : SslMode.Disable;
        }

        adjust?.Invoke(settings);
        var builder = new NpgsqlDataSourceBuilder(settings.ConnectionString);
        builder.UseSslClientAuthenticationOptionsCallback(ssl =>
        {
            ssl.TargetHost = endpoint.Host.Trim('[', ']');
            if (tls is not null)
            {
                ssl.RemoteCertificateValidationCallback = tls.Callback();
                ssl.ClientCertificates = tls.ClientCertificate is { } client ? [client] : null;
            }
        });
        return builder.Build();
    }

    public static async Task<NpgsqlConnection> OpenAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        try
        {
            return await dataSource.OpenConnectionAsync(cancellationToken);
        }
        catch (Exception exception) when (exception is NpgsqlException or PostgresException or SocketException or AuthenticationException or IOException)
        {
            throw Map(exception);
        }
    }

    /// <summary>The stable code for an Npgsql failure, with a message a DBA can act on.</summary>
    public static ConnectivityException Map(Exception exception) => TlsRefusal(exception) ?? exception switch
    {
        PostgresException { SqlState: "28P01" or "28000" } e => new(FailureCodes.AuthFailed,
            "The server refused the user name or password (" + e.MessageText + ").", e),
        PostgresException { SqlState: "3D000" } e => new(FailureCodes.DatabaseNotFound,
            "The database does not exist on this server (" + e.MessageText + ").", e),
        PostgresException { SqlState: "42501" } e => new(FailureCodes.InsufficientPrivilege,
            "The user lacks a privilege Caravan needs (" + e.MessageText + ").", e),
        PostgresException e => new(FailureCodes.DriverError, $"PostgreSQL error {e.SqlState}: {e.MessageText}", e),
        NpgsqlException e when e.Message.Contains("SSL", StringComparison.Ordinal) && e.InnerException is null => new(FailureCodes.TlsFailed,
            "The server does not offer TLS, but sslmode requires it: " + e.Message, e, step: "tls"),
        _ when Find<AuthenticationException>(exception) is { } tls => new(FailureCodes.TlsFailed,
            "The TLS handshake failed: " + tls.Message + " Check sslmode and the server's certificate.", exception, step: "tls"),
        _ when Find<SocketException>(exception) is { } socket => NetworkPath.Refused(socket, 0),
        _ when Find<TimeoutException>(exception) is not null => new(FailureCodes.Timeout, "The server did not answer in time.", exception),
        _ => new(FailureCodes.DriverError, exception.Message, exception),
    };

    private static async Task<T> Execute<T>(Func<Task<T>> work)
    {
        try
        {
            return await work();
        }
        catch (Exception exception) when (exception is NpgsqlException or PostgresException)
        {
            throw Map(exception);
        }
    }

    private static async Task<object?> ScalarAsync(NpgsqlConnection session, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, session);
        return await command.ExecuteScalarAsync(cancellationToken);
    }

    private static async Task<IReadOnlyList<string>> ListAsync(NpgsqlConnection session, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(SchemasQuery, session);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var names = new List<string>();
        while (await reader.ReadAsync(cancellationToken))
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

    private static bool IsEncrypted(NpgsqlConnection session)
    {
        using var command = new NpgsqlCommand("SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()", session);
        return command.ExecuteScalar() is true;
    }

    private static SslMode ParseSslMode(string value) => value.ToLowerInvariant() switch
    {
        "disable" => SslMode.Disable,
        "allow" => SslMode.Allow,
        "require" => SslMode.Require,
        "verify-ca" => SslMode.VerifyCA,
        "verify-full" => SslMode.VerifyFull,
        _ => SslMode.Prefer,
    };
}

using System.ComponentModel;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using Microsoft.Data.SqlClient;
using static Caravan.Api.Connectors.DriverFailures;
using Caravan.Api.Connectivity;

namespace Caravan.Api.Connectors.SqlServer;

/// <summary>One error of a <see cref="SqlException"/>: what the mapping to failure codes reads.</summary>
public readonly record struct SqlServerError(int Number, byte Class, string Message);

/// <summary>
/// MSSQL through Microsoft.Data.SqlClient, in read-intent sessions named <c>caravan</c>. The
/// client is handed the checked address (<c>tcp:ip,port</c>), never the name, while TLS still
/// validates the certificate against the host name the user gave (<c>HostNameInCertificate</c>).
/// Named instances need their port: Caravan does not ask SQL Browser (UDP 1434) for it.
/// </summary>
public sealed class SqlServerDriver(NetworkPath network) : IDriver
{
    private const string SchemasQuery = """
        SELECT name FROM sys.schemas
        WHERE name NOT IN ('sys', 'INFORMATION_SCHEMA', 'guest', 'db_owner', 'db_accessadmin', 'db_securityadmin',
            'db_ddladmin', 'db_backupoperator', 'db_datareader', 'db_datawriter', 'db_denydatareader', 'db_denydatawriter')
        ORDER BY name
        """;

    private static readonly HashSet<int> MissingDatabase = [4060];
    private static readonly HashSet<int> LoginFailures = [18456, 18452, 18470, 18486, 18487, 18488];
    private static readonly HashSet<int> PrivilegeFailures = [229, 262, 300, 916];

    public IReadOnlyCollection<SourceType> Types { get; } = [SourceTypes.Get<MsSqlType>()];

    public IReadOnlyCollection<string> AppliedGroups { get; } = [NetworkPathFields.Tls, NetworkPathFields.SshTunnel];

    public async Task TestAsync(TestRun run, SourceConnection connection)
    {
        if (Unsupported(connection) is { } problem)
        {
            await run.FailAsync(TestSteps.Resolve, problem);
            return;
        }

        if (await network.OpenAsync(run, connection) is not { } endpoint)
        {
            return;
        }

        var builder = Build(connection, endpoint, run.Remaining);
        using var pinned = SqlServerTls.Pin(builder, connection);
        await using var session = await run.StepAsync("authenticate", token => OpenAsync(builder, connection, token));
        if (session is null)
        {
            return;
        }

        if (builder.Encrypt == SqlConnectionEncryptOption.Optional)
        {
            var encrypted = await IsEncryptedAsync(session, run.Token);
            if (encrypted == true)
            {
                run.Succeed("tls", "The connection is encrypted (the server requires it).");
            }
            else
            {
                run.Skip("tls", encrypted == false
                    ? "encrypt=optional and the server did not require encryption: only the login was encrypted."
                    : "encrypt=optional: only the login is certainly encrypted (the user cannot read sys.dm_exec_connections to tell more).");
            }
        }
        else
        {
            run.Succeed("tls", pinned is not null
                ? $"The connection is encrypted (Encrypt={builder.Encrypt}); the server's certificate is the one pinned in tls.ca_certificate."
                : $"The connection is encrypted (Encrypt={builder.Encrypt}).");
        }

        await run.StepAsync("query", token => Execute(() => ScalarAsync(session, "SELECT 1", token)));
        await run.StepAsync("schemas", token => Execute(() => ListAsync(session, token)));
    }

    public async Task<IReadOnlyList<string>> ListSchemasAsync(SourceConnection connection, CancellationToken cancellationToken)
    {
        if (Unsupported(connection) is { } problem)
        {
            throw problem;
        }

        var endpoint = await network.ReachAsync(connection, cancellationToken);
        await ProbeAsync(endpoint.Address, endpoint.Port, network.ConnectLimit, cancellationToken);
        var builder = Build(connection, endpoint, TimeSpan.FromSeconds(30));
        using var pinned = SqlServerTls.Pin(builder, connection);
        await using var session = await OpenAsync(builder, connection, cancellationToken);
        return await Execute(() => ListAsync(session, cancellationToken));
    }

    /// <summary>
    /// The connection settings for one checked endpoint (an address, or an SSH tunnel's local port). Only the options that decide encryption
    /// (<c>encrypt</c>, <c>trustservercertificate</c>, <c>hostnameincertificate</c>) are taken
    /// from a stored connection string; Caravan sets everything else itself.
    /// </summary>
    public static SqlConnectionStringBuilder Build(SourceConnection connection, DatabaseEndpoint endpoint, TimeSpan limit)
    {
        var seconds = (int)Math.Clamp(Math.Ceiling(limit.TotalSeconds), 1, 300);
        var options = connection.Options;
        var name = endpoint.Host.Trim('[', ']');
        var builder = new SqlConnectionStringBuilder
        {
            DataSource = $"tcp:{endpoint.Address},{endpoint.Port}",
            ApplicationName = "caravan",
            ApplicationIntent = ApplicationIntent.ReadOnly,
            Pooling = false,
            ConnectTimeout = seconds,
            CommandTimeout = seconds,
            ConnectRetryCount = 0,
            Encrypt = Encryption(options),
            TrustServerCertificate = Option(options, "trustservercertificate", "trust server certificate") is { } trust && IsTrue(trust),
        };

        if (Option(options, "hostnameincertificate", "host name in certificate") is { Length: > 0 } certificateName)
        {
            builder.HostNameInCertificate = certificateName;
        }
        else if (!IPAddress.TryParse(name, out _))
        {
            builder.HostNameInCertificate = name;
        }

        // The tls group, when there is one, decides instead of the connection string.
        SqlServerTls.Configure(builder, connection, name);

        if (connection.Text("database_name") is { } database)
        {
            builder.InitialCatalog = database;
        }

        if (connection.Text("username") is { } user)
        {
            builder.UserID = user;
        }

        if (connection.Secret("password") is { } password)
        {
            builder.Password = password;
        }

        return builder;
    }

    /// <summary>
    /// Whether SqlClient can open connections in this process: it refuses to when .NET runs in
    /// invariant globalization mode (no ICU), as it needs culture data for collations.
    /// </summary>
    public static bool GlobalizationAvailable { get; } = HasCultureData();

    public static async Task<SqlConnection> OpenAsync(SqlConnectionStringBuilder builder, CancellationToken cancellationToken)
    {
        if (!GlobalizationAvailable)
        {
            throw new ConnectivityException(FailureCodes.DriverError,
                "This Caravan build runs in .NET invariant globalization mode, in which the SQL Server client cannot connect. "
                + "Build it with InvariantGlobalization=false and run it where ICU (libicu) is installed.");
        }

        var session = new SqlConnection(builder.ConnectionString);
        try
        {
            await session.OpenAsync(cancellationToken);
            return session;
        }
        catch (Exception exception) when (exception is SqlException or SocketException or AuthenticationException or IOException or Win32Exception)
        {
            await session.DisposeAsync();
            throw Map(exception);
        }
        catch
        {
            await session.DisposeAsync();
            throw;
        }
    }

    /// <summary>Opens a session for a source: a certificate its <c>tls</c> group asks to check and SqlClient refused is <c>tls_verify_failed</c>.</summary>
    public static async Task<SqlConnection> OpenAsync(SqlConnectionStringBuilder builder, SourceConnection connection, CancellationToken cancellationToken)
    {
        try
        {
            return await OpenAsync(builder, cancellationToken);
        }
        catch (ConnectivityException failure)
        {
            throw SqlServerTls.Refusal(failure, connection);
        }
    }

    /// <summary>The stable code for a SqlClient failure, with a message a DBA can act on.</summary>
    public static ConnectivityException Map(Exception exception) => exception is SqlException sql
        ? Map([.. sql.Errors.Cast<SqlError>().Select(e => new SqlServerError(e.Number, e.Class, e.Message))], sql)
        : Map([], exception);

    /// <summary>
    /// Maps the errors of one failure. All of them are read, not only the first: SQL Server
    /// reports a missing database as 4060 followed by the generic login failure 18456.
    /// </summary>
    public static ConnectivityException Map(IReadOnlyList<SqlServerError> errors, Exception exception)
    {
        var first = errors.Count > 0 ? errors[0] : new SqlServerError(0, 0, exception.Message);
        if (Error(errors, MissingDatabase) is { } missing)
        {
            return new(FailureCodes.DatabaseNotFound,
                $"The database does not exist on this server, or the login may not open it ({missing.Message}).", exception);
        }

        if (Error(errors, LoginFailures) is { } login)
        {
            return new(FailureCodes.AuthFailed,
                $"The server refused the login ({login.Message}). Check the user name and password, and that SQL Server authentication is enabled.", exception);
        }

        if (Error(errors, PrivilegeFailures) is { } denied)
        {
            return new(FailureCodes.InsufficientPrivilege, $"The user lacks a permission Caravan needs ({denied.Message}).", exception);
        }

        if (errors.Any(e => e.Number == -2) || Find<TimeoutException>(exception) is not null
            || Find<Win32Exception>(exception) is { NativeErrorCode: 258 })
        {
            return new(FailureCodes.Timeout, "The server did not answer in time (" + first.Message + ").", exception);
        }

        if (Find<AuthenticationException>(exception) is not null || errors.Append(first).Any(IsTlsError))
        {
            return new(FailureCodes.TlsFailed,
                "The TLS handshake failed (" + first.Message + "). Check the server's certificate, or the encrypt and trustservercertificate options.",
                exception, step: "tls");
        }

        if (Find<SocketException>(exception) is { SocketErrorCode: not SocketError.Success } socket)
        {
            return NetworkPath.Refused(socket, 0);
        }

        if (first.Message.Contains("actively refused", StringComparison.OrdinalIgnoreCase)
            || first.Message.Contains("Connection refused", StringComparison.OrdinalIgnoreCase))
        {
            return new(FailureCodes.PortClosed, "Nothing accepts connections there (" + first.Message + ").", exception);
        }

        return errors.Count > 0
            ? new(FailureCodes.DriverError, $"SQL Server error {first.Number}: {first.Message}", exception)
            : new(FailureCodes.DriverError, exception.Message, exception);
    }

    private static bool HasCultureData()
    {
        try
        {
            return !System.Globalization.CultureInfo.GetCultureInfo("en-US").EnglishName.Contains("Invariant", StringComparison.Ordinal);
        }
        catch (System.Globalization.CultureNotFoundException)
        {
            return false;
        }
    }

    private static SqlServerError? Error(IReadOnlyList<SqlServerError> errors, IReadOnlySet<int> numbers)
    {
        foreach (var error in errors)
        {
            if (numbers.Contains(error.Number))
            {
                return error;
            }
        }

        return null;
    }

    /// <summary>
    /// One TCP connection before SqlClient's: SqlClient retries a refused connection until its
    /// timeout and then reports a generic network error, where this says "port closed" at once.
    /// </summary>
    private static async Task ProbeAsync(IPAddress address, int port, TimeSpan limit, CancellationToken cancellationToken)
    {
        using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(limit);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(address, port), deadline.Token);
        }
        catch (SocketException exception)
        {
            throw NetworkPath.Refused(exception, port);
        }
    }

    /// <summary>Errors of the client's SSL provider, or handshake errors that name certificates or TLS.</summary>
    private static bool IsTlsError(SqlServerError error) =>
        error.Message.Contains("SSL Provider", StringComparison.OrdinalIgnoreCase)
        || error.Message.Contains("certificate", StringComparison.OrdinalIgnoreCase)
        || ((error.Number == 0 || error.Class >= 20)
            && (error.Message.Contains("SSL", StringComparison.Ordinal) || error.Message.Contains("TLS", StringComparison.Ordinal)));

    private static SqlConnectionEncryptOption Encryption(IReadOnlyDictionary<string, string> options)
    {
        if (Option(options, "encrypt") is not { } text)
        {
            return SqlConnectionEncryptOption.Mandatory;
        }

        return SqlConnectionEncryptOption.TryParse(text.Trim(), out var parsed) && parsed is not null
            ? parsed
            : throw new ConnectivityException(FailureCodes.DriverError,
                $"The encrypt option \"{text}\" is not one of true, false, mandatory, optional or strict; correct it with update-config.");
    }

    private static string? Option(IReadOnlyDictionary<string, string> options, params string[] keys)
    {
        foreach (var key in keys)
        {
            if (options.TryGetValue(key, out var value))
            {
                return value;
            }
        }

        return null;
    }

    private static bool IsTrue(string value) =>
        value.Trim().ToLowerInvariant() is "true" or "yes" or "1";

    /// <summary>Problems of the configuration itself, found before any connection is made.</summary>
    private static ConnectivityException? Unsupported(SourceConnection connection)
    {
        try
        {
            _ = Encryption(connection.Options);
        }
        catch (ConnectivityException problem)
        {
            return problem;
        }

        if (Option(connection.Options, "instance") is { } instance && connection.Settings["port"] is null)
        {
            return new ConnectivityException(FailureCodes.DriverError,
                $"The named instance {instance} has no port. Caravan connects over TCP only and does not ask SQL Browser (UDP 1434) for an instance's port: "
                + "find it (SQL Server Configuration Manager, or SELECT local_tcp_port FROM sys.dm_exec_connections WHERE session_id = @@SPID) and set port with update-config.");
        }

        return null;
    }

    private static async Task<T> Execute<T>(Func<Task<T>> work)
    {
        try
        {
            return await work();
        }
        catch (SqlException exception)
        {
            throw Map(exception);
        }
    }

    private static async Task<object?> ScalarAsync(SqlConnection session, string sql, CancellationToken cancellationToken)
    {
        await using var command = new SqlCommand(sql, session);
        return await command.ExecuteScalarAsync(cancellationToken);
    }

    private static async Task<IReadOnlyList<string>> ListAsync(SqlConnection session, CancellationToken cancellationToken)
    {
        await using var command = new SqlCommand(SchemasQuery, session);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var names = new List<string>();
        while (await reader.ReadAsync(cancellationToken))
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

    /// <summary>Whether this session is encrypted; null when the user may not see its own connection row.</summary>
    private static async Task<bool?> IsEncryptedAsync(SqlConnection session, CancellationToken cancellationToken)
    {
        try
        {
            var value = await ScalarAsync(session, "SELECT encrypt_option FROM sys.dm_exec_connections WHERE session_id = @@SPID", cancellationToken);
            return value is string text ? string.Equals(text, "TRUE", StringComparison.OrdinalIgnoreCase) : null;
        }
        catch (SqlException)
        {
            return null;
        }
    }
}

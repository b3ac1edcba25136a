using System.Data;
using System.Net.Sockets;
using System.Security.Authentication;
using Microsoft.Extensions.Options;
using MySqlConnector;
using static Caravan.Api.Connectors.DriverFailures;
using Caravan.Api.Connectivity;

namespace Caravan.Api.Connectors.MySql;

/// <summary>MYSQL and SINGLESTORE through MySqlConnector, in read-only sessions named <c>caravan</c>.</summary>
public sealed class MySqlDriver(NetworkPath network, IOptions<ConnectivityOptions> options) : IDriver
{
    public IReadOnlyCollection<SourceType> Types { get; } = [SourceTypes.Get<MySqlType>(), SourceTypes.Get<SingleStoreType>()];

    public IReadOnlyCollection<string> AppliedGroups { get; } = [NetworkPathFields.Tls, NetworkPathFields.SshTunnel];

    public async Task TestAsync(TestRun run, SourceConnection connection)
    {
        if (await network.OpenAsync(run, connection) is not { } endpoint)
        {
            return;
        }

        await using var dataSource = DataSource(connection, ConnectionString(connection, endpoint, run.Remaining));
        var login = await run.StepAsync("authenticate", async token =>
        {
            var opened = await OpenAsync(dataSource, token);
            try
            {
                return (Session: opened, Cipher: await Execute(() => CipherAsync(opened, token), token));
            }
            catch
            {
                await opened.DisposeAsync();
                throw;
            }
        });
        await using var session = login.Session;
        if (session is null)
        {
            return;
        }

        if (login.Cipher.Length > 0)
        {
            run.Succeed("tls", TlsSettings.Encrypted(TlsSettings.Of(connection), login.Cipher));
        }
        else
        {
            run.Skip("tls", TlsSettings.NotEncrypted(connection,
                "The server does not offer TLS (SslMode=Preferred allows that); the connection is not encrypted."));
        }

        await run.StepAsync("query", token => Execute(() => ScalarAsync(session, "SELECT 1", token), token));
        await run.StepAsync("schemas", token => Execute(() => ListAsync(session, (MySqlType)connection.Type, token), token));
    }

    public async Task<IReadOnlyList<string>> ListSchemasAsync(SourceConnection connection, CancellationToken cancellationToken)
    {
        var endpoint = await network.ReachAsync(connection, cancellationToken);
        var deadline = TimeSpan.FromSeconds(Math.Clamp(options.Value.TestTimeoutSeconds, 1, 60));
        await using var dataSource = DataSource(connection, ConnectionString(connection, endpoint, deadline));
        await using var session = await OpenAsync(dataSource, cancellationToken);
        return await Execute(() => ListAsync(session, (MySqlType)connection.Type, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// The connection string for one checked endpoint (an address, or an SSH tunnel's local port):
    /// the driver never resolves the name itself, may not be redirected elsewhere by the server,
    /// and never reads local files for the server.
    /// </summary>
    public static string ConnectionString(SourceConnection connection, DatabaseEndpoint endpoint, TimeSpan limit)
    {
        // A second beyond the caller's deadline: the deadline's cancellation, not the driver's own
        // timer, ends a silent handshake, so the outcome is always reported the same way.
        var seconds = (uint)Math.Clamp(Math.Ceiling(limit.TotalSeconds) + 1, 1, 300);
        return new MySqlConnectionStringBuilder
        {
            Server = endpoint.Address.ToString(),
            Port = (uint)endpoint.Port,
            UserID = connection.Text("username"),
            Password = connection.Secret("password"),
            Database = connection.Text("database_name"),
            ApplicationName = "caravan",
            Pooling = false,
            ConnectionTimeout = seconds,
            DefaultCommandTimeout = seconds,
            SslMode = SslMode(connection.Text("tls.mode")),
            ServerRedirectionMode = MySqlServerRedirectionMode.Disabled,
            AllowLoadLocalInfile = false,
            AllowPublicKeyRetrieval = false,
            AutoEnlist = false,
        }.ConnectionString;
    }

    /// <summary>
    /// The connection string's TLS: TLS where the server offers it, unless the <c>tls</c> group says
    /// otherwise. Its verifying modes are Required here, as MySqlConnector calls the validation
    /// callback <see cref="DataSource"/> adds only in that mode: the callback does the checking.
    /// </summary>
    private static MySqlSslMode SslMode(string? mode) => mode switch
    {
        null => MySqlSslMode.Preferred,
        NetworkPathFields.TlsDisable => MySqlSslMode.None,
        _ => MySqlSslMode.Required,
    };

    /// <summary>
    /// A data source for <paramref name="connectionString"/> with the source's <c>tls</c> group
    /// applied: the server's certificate is checked by the group's own callback against its CA held
    /// in memory and, for verify-full, the host name the user gave (the session is opened to the
    /// checked address, which is the name MySqlConnector would check); the client certificate is
    /// handed over in memory. A pooling data source has a pool of its own, so no other source's
    /// session, opened with other TLS settings, is ever handed out by it.
    /// </summary>
    public static MySqlDataSource DataSource(SourceConnection connection, string connectionString)
    {
        var builder = new MySqlDataSourceBuilder(connectionString);
        if (TlsSettings.Of(connection) is { Encrypts: true } tls)
        {
            builder.UseRemoteCertificateValidationCallback(tls.Callback(connection.Host ?? throw Unconfigured()));
            if (tls.ClientCertificate is { } client)
            {
                builder.UseClientCertificatesCallback(certificates =>
                {
                    certificates.Add(client);
                    return ValueTask.CompletedTask;
                });
            }
        }

        return builder.Build();
    }

    /// <summary>
    /// Opens a session and makes it read-only where the server supports that. Gives up as soon as
    /// <paramref name="cancellationToken"/> fires: MySqlConnector itself waits for a silent
    /// server's greeting until its own connection timeout.
    /// </summary>
    public static async Task<MySqlConnection> OpenAsync(MySqlDataSource dataSource, CancellationToken cancellationToken)
    {
        var session = dataSource.CreateConnection();
        var opening = session.OpenAsync(cancellationToken);
        try
        {
            await opening.WaitAsync(cancellationToken);
            await ReadOnlyAsync(session, cancellationToken);
            return session;
        }
        catch (OperationCanceledException) when (!opening.IsCompleted)
        {
            // The abandoned attempt ends within its connection timeout; close it then.
            _ = opening.ContinueWith(_ => session.DisposeAsync().AsTask(), CancellationToken.None,
                TaskContinuationOptions.None, TaskScheduler.Default).Unwrap();
            throw;
        }
        catch (Exception exception) when (cancellationToken.IsCancellationRequested && exception is not OperationCanceledException)
        {
            // Cancelled mid-handshake, MySqlConnector may report the aborted socket instead.
            await session.DisposeAsync();
            throw new OperationCanceledException("The connection attempt was cancelled.", exception, cancellationToken);
        }
        catch (Exception exception) when (exception is MySqlException or SocketException or AuthenticationException or IOException or TlsVerificationException)
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

    /// <summary>The stable code for a MySqlConnector failure, with a message a DBA can act on.</summary>
    public static ConnectivityException Map(Exception exception) => TlsRefusal(exception) ?? exception switch
    {
        MySqlException { ErrorCode: MySqlErrorCode.AccessDenied } e => new(FailureCodes.AuthFailed,
            "The server refused the user name or password (" + e.Message + ").", e),
        MySqlException { ErrorCode: MySqlErrorCode.UnknownDatabase } e => new(FailureCodes.DatabaseNotFound,
            "The database does not exist on this server (" + e.Message + ").", e),
        MySqlException { ErrorCode: MySqlErrorCode.DatabaseAccessDenied or MySqlErrorCode.TableAccessDenied or MySqlErrorCode.SpecifiedAccessDeniedError } e =>
            new(FailureCodes.InsufficientPrivilege, "The user lacks a privilege Caravan needs (" + e.Message + ").", e),
        MySqlException { ErrorCode: MySqlErrorCode.UnableToConnectToHost } e when e.Message.Contains("does not support SSL", StringComparison.Ordinal) =>
            new(FailureCodes.TlsFailed, "The server does not offer TLS, but tls.mode requires it: " + e.Message, e, step: "tls"),
        _ when Find<AuthenticationException>(exception) is { } tls => new(FailureCodes.TlsFailed,
            "The TLS handshake failed: " + tls.Message + " Check the server's TLS configuration.", exception, step: "tls"),
        _ when Find<TimeoutException>(exception) is not null => new(FailureCodes.Timeout, "The server did not answer in time.", exception),
        MySqlException { ErrorCode: MySqlErrorCode.CommandTimeoutExpired } e => new(FailureCodes.Timeout, "The server did not answer in time.", e),
        MySqlException { ErrorCode: MySqlErrorCode.UnableToConnectToHost } e when e.Message.Contains("timeout", StringComparison.OrdinalIgnoreCase) =>
            new(FailureCodes.Timeout, "The server did not answer in time.", e),
        _ when Find<SocketException>(exception) is { } socket => NetworkPath.Refused(socket, 0),
        // MySqlConnector reports a refused connection without the socket error.
        MySqlException { ErrorCode: MySqlErrorCode.UnableToConnectToHost } e => new(FailureCodes.PortClosed,
            "Nothing accepts connections on this port there. Check the port, and that the database listens on this address.", e),
        MySqlException e => new(FailureCodes.DriverError, $"MySQL error {e.Number}: {e.Message}", e),
        _ => new(FailureCodes.DriverError, exception.Message, exception),
    };

    /// <summary>
    /// <c>SET SESSION TRANSACTION READ ONLY</c>, so Caravan's statements cannot write. Servers that
    /// do not know the statement (some MySQL-compatible ones) keep a normal session.
    /// </summary>
    private static async Task ReadOnlyAsync(MySqlConnection session, CancellationToken cancellationToken)
    {
        try
        {
            await ScalarAsync(session, "SET SESSION TRANSACTION READ ONLY", cancellationToken);
        }
        catch (MySqlException exception) when (session.State == ConnectionState.Open && !cancellationToken.IsCancellationRequested
            && exception.ErrorCode is not (MySqlErrorCode.CommandTimeoutExpired or MySqlErrorCode.QueryInterrupted))
        {
            // Read-only where possible: this server has no read-only sessions.
        }
    }

    private static async Task<T> Execute<T>(Func<Task<T>> work, CancellationToken cancellationToken)
    {
        try
        {
            return await work();
        }
        catch (Exception exception) when (exception is MySqlException or SocketException or IOException)
        {
            throw cancellationToken.IsCancellationRequested
                ? new OperationCanceledException("The statement was cancelled.", exception, cancellationToken)
                : Map(exception);
        }
    }

    private static async Task<object?> ScalarAsync(MySqlConnection session, string sql, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand(sql, session);
        return await command.ExecuteScalarAsync(cancellationToken);
    }

    /// <summary>The session's TLS cipher, or an empty string when the session is not encrypted.</summary>
    private static async Task<string> CipherAsync(MySqlConnection session, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand("SHOW SESSION STATUS LIKE 'Ssl_cipher'", session);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) && !reader.IsDBNull(1) ? reader.GetString(1) : string.Empty;
    }

    private static async Task<IReadOnlyList<string>> ListAsync(MySqlConnection session, MySqlType type, CancellationToken cancellationToken)
    {
        await using var command = new MySqlCommand("SHOW DATABASES", session);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var names = new List<string>();
        while (await reader.ReadAsync(cancellationToken))
        {
            var name = reader.GetString(0);
            if (!type.SystemDatabases.Contains(name))
            {
                names.Add(name);
            }
        }

        names.Sort(StringComparer.Ordinal);
        return names;
    }
}

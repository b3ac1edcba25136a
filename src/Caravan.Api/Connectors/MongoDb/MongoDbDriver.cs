using System.Net.Sockets;
using System.Security.Authentication;
using MongoDB.Bson;
using MongoDB.Driver;
using MongoDB.Driver.Core.Configuration;
using MongoDB.Driver.Core.Connections;
using MongoDB.Driver.Core.Events;
using static Caravan.Api.Connectors.DriverFailures;
using Caravan.Api.Connectivity;

namespace Caravan.Api.Connectors.MongoDb;

/// <summary>
/// MONGODB through the official driver, reading from secondaries where there are any, as the
/// application <c>caravan</c>. The driver chooses its own hosts (SRV records, replica set members
/// it discovers) and opens its own sockets, so every connection it makes goes through an
/// <see cref="EgressProxy"/> that checks the address it connects to.
/// </summary>
public sealed class MongoDbDriver(NetworkPath network) : IDriver
{
    private static readonly HashSet<string> SystemDatabases = new(StringComparer.Ordinal) { "admin", "local", "config" };

    public IReadOnlyCollection<SourceType> Types { get; } = [SourceTypes.Get<MongoDbType>()];

    /// <summary>The tunnel only in the host form (the write path refuses it with a connection string).</summary>
    public IReadOnlyCollection<string> AppliedGroups { get; } = [NetworkPathFields.Tls, NetworkPathFields.SshTunnel];

    public async Task TestAsync(TestRun run, SourceConnection connection)
    {
        MongoClientSettings settings;
        try
        {
            settings = Settings(connection);
        }
        catch (ConnectivityException problem)
        {
            await run.FailAsync(TestSteps.Resolve, problem);
            return;
        }

        DatabaseEndpoint? tunnel = null;
        if (SshTunnels.Holds(connection))
        {
            if ((tunnel = await network.OpenAsync(run, connection)) is null)
            {
                return;
            }
        }
        else if (settings.Scheme == ConnectionStringScheme.MongoDBPlusSrv)
        {
            const string reason = "mongodb+srv: the driver finds the hosts in DNS SRV records when it connects; each connection is checked against the egress policy then.";
            run.Skip("resolve", reason);
            run.Skip("egress", reason);
            run.Skip("connect", reason);
        }
        else
        {
            var seed = settings.Servers.First();
            if (await network.OpenAsync(run, seed.Host, seed.Port) is null)
            {
                return;
            }
        }

        await using var proxy = Proxy(settings, tunnel);
        var failures = new ServerFailures();
        using var client = new MongoClient(Prepare(settings, proxy, failures, run.Remaining, network.ConnectLimit, tunnel is not null));
        var database = client.GetDatabase(DatabaseName(connection));
        var pinged = await run.StepAsync("authenticate", token => Execute(
            () => database.RunCommandAsync<BsonDocument>(new BsonDocument("ping", 1), cancellationToken: token), proxy, failures));
        if (pinged is null)
        {
            return;
        }

        if (settings.UseTls && NetworkPathFields.Holds(connection, NetworkPathFields.Tls))
        {
            run.Succeed("tls", TlsSettings.Encrypted(TlsSettings.Of(connection)));
        }
        else if (settings.UseTls)
        {
            run.Succeed("tls", settings.AllowInsecureTls
                ? "The connection is encrypted, but the server's certificate is not checked (tlsInsecure or tlsAllowInvalidCertificates)."
                : "The connection is encrypted.");
        }
        else
        {
            run.Skip("tls", TlsSettings.NotEncrypted(connection,
                "The connection string does not ask for TLS (tls=true); the connection is not encrypted."));
        }

        await run.StepAsync("query", token => Execute(() => database.RunCommandAsync<BsonDocument>(
            new BsonDocument { { "listCollections", 1 }, { "nameOnly", true }, { "authorizedCollections", true } }, cancellationToken: token), proxy, failures));
        await run.StepAsync("schemas", token => Execute(() => ListAsync(client, token), proxy, failures));
    }

    public async Task<IReadOnlyList<string>> ListSchemasAsync(SourceConnection connection, CancellationToken cancellationToken)
    {
        var settings = Settings(connection);
        var tunnel = await network.TunnelAsync(connection, cancellationToken);
        if (tunnel is null && settings.Scheme != ConnectionStringScheme.MongoDBPlusSrv)
        {
            // The proxy checks every connection; checking the seeds first gives a clear answer sooner.
            foreach (var server in settings.Servers)
            {
                await network.ResolveAllowedAsync(server.Host, cancellationToken);
            }
        }

        await using var proxy = Proxy(settings, tunnel);
        var failures = new ServerFailures();
        using var client = new MongoClient(Prepare(settings, proxy, failures, TimeSpan.FromSeconds(30), network.ConnectLimit, tunnel is not null));
        return await Execute(() => ListAsync(client, cancellationToken), proxy, failures);
    }

    /// <summary>
    /// The user's settings, from the connection string (kept whole) or the older fields, with the
    /// <c>tls</c> group applied. A connection string that does not parse gives a fixed message: the
    /// driver's would repeat it.
    /// </summary>
    public static MongoClientSettings Settings(SourceConnection connection) => WithTls(UserSettings(connection), TlsSettings.Of(connection));

    /// <summary>
    /// The <c>tls</c> group over the connection string's TLS options: <c>disable</c> turns TLS off;
    /// the other modes turn it on, never insecure, with the server's certificate checked by the
    /// group's callback (its CA in memory; the driver names the host it connects to, so
    /// verify-full checks the host the user gave, also through the egress proxy) and the client
    /// certificate handed over in memory.
    /// </summary>
    public static MongoClientSettings WithTls(MongoClientSettings settings, TlsSettings? tls)
    {
        if (tls is null)
        {
            return settings;
        }

        settings.UseTls = tls.Encrypts;
        settings.AllowInsecureTls = false;
        settings.SslSettings = tls.Encrypts
            ? new SslSettings
            {
                ServerCertificateValidationCallback = tls.Callback(),
                ClientCertificates = tls.ClientCertificate is { } client ? [client] : [],
                CheckCertificateRevocation = false,
            }
            : null;
        return settings;
    }

    private static MongoClientSettings UserSettings(SourceConnection connection)
    {
        if (connection.Secret("connection_string") is { } url)
        {
            try
            {
                return MongoClientSettings.FromConnectionString(url);
            }
            catch (Exception exception) when (exception is MongoConfigurationException or ArgumentException or FormatException)
            {
                throw new ConnectivityException(FailureCodes.DriverError,
                    "The MongoDB driver cannot use this connection string (an option it does not know, or a value it refuses); send a corrected one with update-config.");
            }
        }

        var host = connection.Text("hostname")
            ?? throw new ConnectivityException(FailureCodes.DriverError, "The source has no connection string or host name yet; complete its configuration with update-config.");
        var settings = new MongoClientSettings { Server = new MongoServerAddress(HostNames.ForAuthority(host), connection.Port) };
        if (connection.Text("username") is { } user)
        {
            // As in a mongodb:// URI, the database in the path is where the user is defined.
            settings.Credential = MongoCredential.CreateCredential(connection.Text("database_name") ?? "admin", user, connection.Secret("password") ?? string.Empty);
        }

        return settings;
    }

    /// <summary>The proxy the driver connects through: checking every host, or sending the source's host to its SSH tunnel.</summary>
    private EgressProxy Proxy(MongoClientSettings settings, DatabaseEndpoint? tunnel) =>
        tunnel is null ? new EgressProxy(network) : new EgressProxy(network, settings.Server.Host, settings.Server.Port, tunnel);

    /// <summary>
    /// Caravan's own settings on top of the user's: read-only intent, deadlines, the egress proxy;
    /// through a tunnel, a direct connection (other replica set members are not behind it).
    /// </summary>
    public static MongoClientSettings Prepare(MongoClientSettings user, EgressProxy proxy, ServerFailures failures, TimeSpan limit, TimeSpan connectLimit, bool tunnelled = false)
    {
        var settings = user.Clone();
        if (tunnelled)
        {
            settings.DirectConnection = true;
        }

        var budget = limit > TimeSpan.FromMilliseconds(100) ? limit : TimeSpan.FromMilliseconds(100);
        settings.ApplicationName = "caravan";
        settings.ReadPreference = ReadPreference.SecondaryPreferred;
        settings.RetryReads = false;
        settings.RetryWrites = false;
        settings.ServerSelectionTimeout = budget;
        settings.ConnectTimeout = connectLimit < budget ? connectLimit : budget;
        settings.SocketTimeout = budget;
        settings.Socks5ProxySettings = new Socks5ProxySettings("127.0.0.1", proxy.Port);
        var configure = user.ClusterConfigurator;
        settings.ClusterConfigurator = builder =>
        {
            configure?.Invoke(builder);
            builder.Subscribe<ServerHeartbeatFailedEvent>(e => failures.Last = e.Exception);
            builder.Subscribe<ConnectionOpeningFailedEvent>(e => failures.Last = e.Exception);
        };
        return settings;
    }

    /// <summary>The database named by the connection string or the older fields, else <c>admin</c>.</summary>
    public static string DatabaseName(SourceConnection connection) =>
        (connection.Secret("connection_string") is { } url ? new MongoUrl(url).DatabaseName : connection.Text("database_name")) is { Length: > 0 } name
            ? name
            : "admin";

    /// <summary>
    /// The stable code for a driver failure. A server selection timeout says nothing of its cause,
    /// so the proxy's refusal and the servers' last connection failure are read first.
    /// </summary>
    public static ConnectivityException Map(Exception exception, ConnectivityException? proxyFailure = null, Exception? serverFailure = null)
    {
        if (TlsRefusal(exception) is { } refused)
        {
            return refused;
        }

        switch (exception)
        {
            case MongoAuthenticationException e:
                return new(FailureCodes.AuthFailed, "The server refused the user name or password (" + e.Message + ").", e);
            case MongoCommandException { Code: 18 } e:
                return new(FailureCodes.AuthFailed, "The server refused the user name or password (" + e.ErrorMessage + ").", e);
            case MongoCommandException { Code: 13 } e:
                return new(FailureCodes.InsufficientPrivilege, "The user lacks a privilege Caravan needs (" + e.ErrorMessage + ").", e);
            case MongoCommandException { Code: 26 } e:
                return new(FailureCodes.DatabaseNotFound, "The database or collection does not exist (" + e.ErrorMessage + ").", e);
            case MongoCommandException e:
                return new(FailureCodes.DriverError, $"MongoDB error {e.Code} ({e.CodeName}): {e.ErrorMessage}", e);
        }

        if (Find<MongoAuthenticationException>(exception) is { } auth)
        {
            return Map(auth);
        }

        if (exception is TimeoutException)
        {
            if (proxyFailure is not null)
            {
                return new(proxyFailure.Code, proxyFailure.Message, exception);
            }

            if (serverFailure is not null && Find<TimeoutException>(serverFailure) is null)
            {
                var cause = Map(serverFailure);
                if (cause.Code != FailureCodes.DriverError)
                {
                    return cause;
                }
            }

            return new(FailureCodes.Timeout,
                "No MongoDB server was available in time. Check the hosts and ports, that a firewall lets Caravan through, and, for a replica set, that its members' names resolve from Caravan.",
                exception);
        }

        if (Find<AuthenticationException>(exception) is { } tls)
        {
            return new(FailureCodes.TlsFailed,
                "The TLS handshake failed: " + tls.Message + " Check the server's certificate, or the tls options of the connection string.", exception, step: "tls");
        }

        if (Find<SocketException>(exception) is { } socket)
        {
            return NetworkPath.Refused(socket, 0);
        }

        return new(FailureCodes.DriverError, exception.Message, exception);
    }

    private static async Task<T> Execute<T>(Func<Task<T>> work, EgressProxy proxy, ServerFailures failures)
    {
        try
        {
            return await work();
        }
        catch (Exception exception) when (exception is MongoException or TimeoutException or SocketException or AuthenticationException)
        {
            throw Map(exception, proxy.LastFailure, failures.Last);
        }
        catch (OperationCanceledException exception) when (Cause(proxy, failures) is { } cause)
        {
            // The deadline passed while the driver kept retrying a connection that failed for a known reason: that is the answer.
            throw new ConnectivityException(cause.Code, cause.Message, exception, cause.Step);
        }
    }

    /// <summary>Why the driver could not connect so far, when that is known: the proxy's refusal, else a server's TLS or login failure.</summary>
    private static ConnectivityException? Cause(EgressProxy proxy, ServerFailures failures)
    {
        if (proxy.LastFailure is { } refused)
        {
            return refused;
        }

        return failures.Last is { } failure && Find<TimeoutException>(failure) is null && Map(failure) is { Code: not FailureCodes.DriverError } cause
            ? cause
            : null;
    }

    private static async Task<IReadOnlyList<string>> ListAsync(MongoClient client, CancellationToken cancellationToken)
    {
        var admin = client.GetDatabase("admin");
        var answer = await admin.RunCommandAsync<BsonDocument>(
            new BsonDocument { { "listDatabases", 1 }, { "nameOnly", true }, { "authorizedDatabases", true } }, cancellationToken: cancellationToken);
        return [.. answer["databases"].AsBsonArray
            .Select(d => d["name"].AsString)
            .Where(n => !SystemDatabases.Contains(n))
            .Order(StringComparer.Ordinal)];
    }
}

/// <summary>The last connection failure the driver reported for any server (it retries on its own).</summary>
public sealed class ServerFailures
{
    private Exception? _last;

    public Exception? Last
    {
        get => Volatile.Read(ref _last);
        set => Volatile.Write(ref _last, value);
    }
}

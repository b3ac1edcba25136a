using System.Data.Common;
using DuckDB.NET.Data;
using Caravan.Api.Connectivity;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Connectors.MotherDuck;

/// <summary>
/// MOTHERDUCK through DuckDB.NET: <c>md:&lt;database_name&gt;</c> with the token, by DuckDB's
/// MotherDuck extension (which DuckDB downloads on first use and which then talks to
/// api.motherduck.com itself). A <c>database_name</c> that is a local file path opens that DuckDB
/// file read-only, with external access off, when the operator allows local files
/// (<c>Caravan__Egress__AllowLocalFiles=true</c>); otherwise it is refused as egress.
/// </summary>
public sealed class MotherDuckDriver(NetworkPath network, IOptions<LocalFileOptions> localFiles) : IDriver
{
    /// <summary>Where the MotherDuck extension connects; checked before DuckDB is asked to go there.</summary>
    public const string ServiceHost = "api.motherduck.com";

    private const string SchemasQuery = """
        SELECT schema_name FROM information_schema.schemata
        WHERE catalog_name = current_database() AND schema_name NOT IN ('information_schema', 'pg_catalog')
        ORDER BY schema_name
        """;

    public IReadOnlyCollection<SourceType> Types { get; } = [SourceTypes.Get<MotherDuckType>()];

    /// <summary>No TLS step: DuckDB's extension makes (and encrypts) its own connection to MotherDuck.</summary>
    public IReadOnlyList<string> Steps => TestSteps.WithoutTls;

    public async Task TestAsync(TestRun run, SourceConnection connection)
    {
        var name = connection.Text("database_name");
        if (name is null)
        {
            await run.FailAsync(TestSteps.Resolve, new ConnectivityException(FailureCodes.DriverError,
                "The source has no database_name yet; complete its configuration with update-config."));
            return;
        }

        DuckDBConnection? session;
        if (IsLocalFile(name))
        {
            run.Skip("resolve", "database_name is a local DuckDB file; there is no host to resolve.");
            if (await run.StepAsync("egress", _ => Task.FromResult(CheckLocalFile())) is not true)
            {
                return;
            }

            session = await run.StepAsync("connect", token => OpenAsync(LocalConnectionString(name), token));
            run.Skip("authenticate", "A local DuckDB file has no login.");
        }
        else
        {
            if (await run.StepAsync("resolve", _ => Task.FromResult(CheckName(name))) is null
                || await network.OpenAsync(run, ServiceHost, 443) is null)
            {
                return;
            }

            session = await run.StepAsync("authenticate", token => OpenAsync(CloudConnectionString(name, connection.Secret("token")), token));
        }

        if (session is null)
        {
            return;
        }

        await using (session)
        {
            await run.StepAsync("query", token => Execute(() => Scalar(session, "SELECT 1"), token));
            await run.StepAsync("schemas", token => Execute(() => List(session), token));
        }
    }

    public async Task<IReadOnlyList<string>> ListSchemasAsync(SourceConnection connection, CancellationToken cancellationToken)
    {
        var name = connection.Text("database_name")
            ?? throw new ConnectivityException(FailureCodes.DriverError, "The source has no database_name yet; complete its configuration with update-config.");
        string connectionString;
        if (IsLocalFile(name))
        {
            CheckLocalFile();
            connectionString = LocalConnectionString(name);
        }
        else
        {
            CheckName(name);
            await network.ResolveAllowedAsync(ServiceHost, cancellationToken);
            connectionString = CloudConnectionString(name, connection.Secret("token"));
        }

        await using var session = await OpenAsync(connectionString, cancellationToken);
        return await Execute(() => List(session), cancellationToken);
    }

    /// <summary>A path (with a slash) or a DuckDB file name (.db, .duckdb) rather than a MotherDuck database.</summary>
    public static bool IsLocalFile(string name) =>
        name.Contains('/', StringComparison.Ordinal) || name.Contains('\\', StringComparison.Ordinal)
        || name.EndsWith(".db", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".duckdb", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// <c>md:&lt;name&gt;?motherduck_token=...</c>. The token is part of the data source on purpose:
    /// DuckDB.NET and DuckDB share one database instance per data source, so two sources naming the
    /// same database with different tokens must not share one.
    /// </summary>
    public static string CloudConnectionString(string name, string? token)
    {
        var database = CheckName(name);
        if (string.IsNullOrEmpty(token))
        {
            throw new ConnectivityException(FailureCodes.AuthFailed, "The source has no MotherDuck token; send one with update-config.");
        }

        return new DuckDBConnectionStringBuilder
        {
            DataSource = $"md:{database}?motherduck_token={Uri.EscapeDataString(token)}",
            AllowPersistentSecrets = false,
            CustomUserAgent = "caravan",
        }.ConnectionString;
    }

    /// <summary>The local file, read-only, unable to reach other files, the network or new extensions.</summary>
    public static string LocalConnectionString(string path) => new DuckDBConnectionStringBuilder
    {
        DataSource = path,
        AccessMode = DuckDBAccessMode.ReadOnly,
        EnableExternalAccess = false,
        AutoinstallKnownExtensions = false,
        AutoloadKnownExtensions = false,
        AllowPersistentSecrets = false,
        LockConfiguration = true,
    }.ConnectionString;

    /// <summary>The stable code for a DuckDB failure; the extension's download failure gets an actionable message.</summary>
    public static ConnectivityException Map(Exception exception)
    {
        var message = FirstLine(exception.Message);
        bool Says(string text) => exception.Message.Contains(text, StringComparison.OrdinalIgnoreCase);

        if (Says("extension") && (Says("download") || Says("install") || Says("HTTP") || Says("load") || Says("not found")))
        {
            return new(FailureCodes.DriverError,
                $"DuckDB could not load its MotherDuck extension ({message}). DuckDB downloads it from extensions.duckdb.org on first use, "
                + $"and the extension then reaches {ServiceHost} over HTTPS: allow Caravan outbound HTTPS to both, or install the extension in advance "
                + "(INSTALL motherduck in DuckDB as the user Caravan runs as).", exception);
        }

        if (Says("token") && (Says("invalid") || Says("expired") || Says("unauthenticated") || Says("unauthorized") || Says("authenticat")))
        {
            return new(FailureCodes.AuthFailed, $"MotherDuck refused the token ({message}). Create a new access token and send it with update-config.", exception);
        }

        if (Says("does not exist") || Says("no database") || Says("not found") || Says("No such file"))
        {
            return new(FailureCodes.DatabaseNotFound, $"The database does not exist ({message}).", exception);
        }

        if (Says("permission denied") || Says("access denied") || Says("forbidden"))
        {
            return new(FailureCodes.InsufficientPrivilege, $"The database cannot be read with these rights ({message}).", exception);
        }

        return new(FailureCodes.DriverError, "DuckDB error: " + message, exception);
    }

    /// <summary>
    /// Opens a connection. DuckDB works synchronously and cannot be interrupted while it opens (the
    /// extension may be downloading): past the deadline the caller gets its answer and the late
    /// connection is closed when it comes.
    /// </summary>
    internal static async Task<DuckDBConnection> OpenAsync(string connectionString, CancellationToken cancellationToken)
    {
        var opening = Task.Run(() =>
        {
            var session = new DuckDBConnection(connectionString);
            try
            {
                session.Open();
                return session;
            }
            catch
            {
                session.Dispose();
                throw;
            }
        }, CancellationToken.None);
        try
        {
            return await opening.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            _ = opening.ContinueWith(t => t.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
            throw;
        }
        catch (DuckDBException exception)
        {
            throw Map(exception);
        }
    }

    private static async Task<T> Execute<T>(Func<T> work, CancellationToken cancellationToken)
    {
        try
        {
            return await Task.Run(work, CancellationToken.None).WaitAsync(cancellationToken);
        }
        catch (DuckDBException exception)
        {
            throw Map(exception);
        }
    }

    private static object? Scalar(DuckDBConnection session, string sql)
    {
        using var command = session.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    private static IReadOnlyList<string> List(DuckDBConnection session)
    {
        using var command = session.CreateCommand();
        command.CommandText = SchemasQuery;
        using DbDataReader reader = command.ExecuteReader();
        var names = new List<string>();
        while (reader.Read())
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

    private bool CheckLocalFile() => localFiles.Value.AllowLocalFiles
        ? true
        : throw new ConnectivityException(FailureCodes.EgressDenied,
            "database_name names a local DuckDB file, not a MotherDuck database. Caravan opens local files only when its operator sets "
            + "Caravan__Egress__AllowLocalFiles=true; for MotherDuck, give the database's name (my_db or md:my_db).",
            step: "egress");

    /// <summary>A MotherDuck database name; characters that would add URL parameters to <c>md:</c> are refused.</summary>
    private static string CheckName(string name)
    {
        var database = name.StartsWith("md:", StringComparison.OrdinalIgnoreCase) ? name[3..] : name;
        return database.Length > 0 && !database.Any(c => c is '?' or '&' or '#' or ';' or '=' or '"' or '\'' || char.IsWhiteSpace(c) || char.IsControl(c))
            ? database
            : throw new ConnectivityException(FailureCodes.DriverError,
                "database_name is not a MotherDuck database name (letters, digits and underscores; no ?, &, = or spaces); correct it with update-config.");
    }

    /// <summary>DuckDB's first line, the message proper; not shortened here (the scrubber cuts after masking).</summary>
    private static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();
}

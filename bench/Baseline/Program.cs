// The benchmark baseline: what serving Caravan's measured routes costs with nothing on top.
// One terminal request delegate on Kestrel (no routing, no filters, no logging), the bearer key
// checked by plain string comparison, GET = one SELECT, PATCH update-config = one durable UPDATE
// that merges the body into the JSON settings column inside the database, list = COUNT + page.
// It runs against Caravan's own store (same schema, same rows), so both read the same data.
//
// Configuration (environment):
//   BASELINE_STORE  Sqlite (default) or Postgres
//   BASELINE_DB     connection string of the store Caravan uses
//   BASELINE_KEY    the one valid API key; BASELINE_ORG the organization name it acts for (default)
//   BASELINE_QUERY_DB  optional: a PostgreSQL connection string; POST /{id}/query/ then runs the
//                   body's "sql" over one raw pooled Npgsql data source (any id), answering as Caravan does
using System.Buffers;
using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Npgsql;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.ClearProviders();
builder.WebHost.ConfigureKestrel(kestrel => kestrel.AddServerHeader = false);
var app = builder.Build();

var isPostgres = string.Equals(Environment.GetEnvironmentVariable("BASELINE_STORE"), "Postgres", StringComparison.OrdinalIgnoreCase);
var connectionString = Environment.GetEnvironmentVariable("BASELINE_DB") ?? throw new InvalidOperationException("BASELINE_DB is not set.");
var apiKey = Environment.GetEnvironmentVariable("BASELINE_KEY") ?? throw new InvalidOperationException("BASELINE_KEY is not set.");
var organization = Environment.GetEnvironmentVariable("BASELINE_ORG") ?? "default";
Store store = isPostgres ? new PostgresStore(connectionString) : new SqliteStore(connectionString);
var organizationId = await store.OrganizationIdAsync(organization);
var queryDb = Environment.GetEnvironmentVariable("BASELINE_QUERY_DB");
var handler = new Handler(store, "Bearer " + apiKey, organizationId,
    string.IsNullOrEmpty(queryDb) ? null : NpgsqlDataSource.Create(queryDb));

app.Run(handler.HandleAsync);
await app.RunAsync();

/// <summary>Routes by hand: /api/v1/sources/, /api/v1/sources/{id}/, /api/v1/sources/{id}/update-config/.</summary>
internal sealed class Handler(Store store, string expectedAuthorization, long organizationId, NpgsqlDataSource? queryTarget)
{
    private const string Prefix = "/api/v1/sources";
    private static readonly byte[] NotFoundBody = """{"detail":"Not found."}"""u8.ToArray();
    private static readonly byte[] InvalidKeyBody = """{"detail":"Invalid API key."}"""u8.ToArray();
    private static readonly byte[] NoCredentialsBody = """{"detail":"Authentication credentials were not provided."}"""u8.ToArray();
    private static readonly byte[] MalformedBody = """{"error":"Expected a JSON object.","errors":{}}"""u8.ToArray();

    public async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var path = request.Path.Value ?? string.Empty;
        if (!path.StartsWith(Prefix, StringComparison.Ordinal))
        {
            await WriteAsync(context, 404, NotFoundBody);
            return;
        }

        var authorization = request.Headers.Authorization.ToString();
        if (authorization.Length == 0)
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await WriteAsync(context, 401, NoCredentialsBody);
            return;
        }

        if (!string.Equals(authorization, expectedAuthorization, StringComparison.Ordinal))
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await WriteAsync(context, 401, InvalidKeyBody);
            return;
        }

        // What follows the prefix: "", "/", "/{id}", "/{id}/", "/{id}/update-config", "/{id}/update-config/".
        var rest = path.AsSpan(Prefix.Length).Trim('/');
        if (rest.IsEmpty)
        {
            if (HttpMethods.IsGet(request.Method))
            {
                await ListAsync(context);
                return;
            }
        }
        else
        {
            var slash = rest.IndexOf('/');
            var idText = slash < 0 ? rest : rest[..slash];
            var action = slash < 0 ? [] : rest[(slash + 1)..];
            if (long.TryParse(idText, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id > 0)
            {
                if (action.IsEmpty && HttpMethods.IsGet(request.Method))
                {
                    await GetAsync(context, id);
                    return;
                }

                if (action.SequenceEqual("update-config") && HttpMethods.IsPatch(request.Method))
                {
                    await UpdateConfigAsync(context, id);
                    return;
                }

                if (action.SequenceEqual("query") && HttpMethods.IsPost(request.Method) && queryTarget is not null)
                {
                    await QueryAsync(context, queryTarget);
                    return;
                }
            }
        }

        await WriteAsync(context, 404, NotFoundBody);
    }

    /// <summary>The statement of the body over a raw pooled connection, rows written as Caravan writes them.</summary>
    private static async Task QueryAsync(HttpContext context, NpgsqlDataSource target)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var body = await ReadBodyAsync(context.Request);
        string sql;
        using (var document = JsonDocument.Parse(body))
        {
            sql = document.RootElement.GetProperty("sql").GetString()!;
        }

        await using var command = target.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync(context.RequestAborted);
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json; charset=utf-8";
        await using var json = new Utf8JsonWriter(context.Response.BodyWriter);
        json.WriteStartObject();
        json.WriteStartArray("columns");
        for (var i = 0; i < reader.FieldCount; i++)
        {
            json.WriteStartObject();
            json.WriteString("name", reader.GetName(i));
            json.WriteString("type", reader.GetDataTypeName(i));
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteStartArray("rows");
        var count = 0;
        while (await reader.ReadAsync(context.RequestAborted))
        {
            count++;
            json.WriteStartArray();
            for (var i = 0; i < reader.FieldCount; i++)
            {
                switch (reader.GetValue(i))
                {
                    case DBNull:
                        json.WriteNullValue();
                        break;
                    case int number:
                        json.WriteNumberValue(number);
                        break;
                    case long number:
                        json.WriteNumberValue(number);
                        break;
                    case var other:
                        json.WriteStringValue(Convert.ToString(other, CultureInfo.InvariantCulture));
                        break;
                }
            }

            json.WriteEndArray();
        }

        json.WriteEndArray();
        json.WriteNumber("row_count", count);
        json.WriteBoolean("truncated", false);
        json.WriteNumber("duration_ms", (long)System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        json.WriteEndObject();
        await json.FlushAsync(context.RequestAborted);
    }

    private async Task GetAsync(HttpContext context, long id)
    {
        var source = await store.GetAsync(organizationId, id, context.RequestAborted);
        if (source is null)
        {
            await WriteAsync(context, 404, NotFoundBody);
            return;
        }

        context.Response.Headers.ETag = $"\"{id}-{source.Value.Version}\"";
        await WriteJsonAsync(context, source.Value, full: true);
    }

    private async Task UpdateConfigAsync(HttpContext context, long id)
    {
        // The body must be a JSON object; it is merged into the settings by the database.
        var body = await ReadBodyAsync(context.Request);
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                await WriteAsync(context, 400, MalformedBody);
                return;
            }
        }
        catch (JsonException)
        {
            await WriteAsync(context, 400, MalformedBody);
            return;
        }

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var source = await store.UpdateConfigAsync(organizationId, id, Encoding.UTF8.GetString(body), now, context.RequestAborted);
        if (source is null)
        {
            await WriteAsync(context, 404, NotFoundBody);
            return;
        }

        context.Response.Headers.ETag = $"\"{id}-{source.Value.Version}\"";
        await WriteJsonAsync(context, source.Value, full: false);
    }

    private async Task ListAsync(HttpContext context)
    {
        var query = context.Request.Query;
        var pageSize = int.TryParse(query["page_size"], NumberStyles.None, CultureInfo.InvariantCulture, out var size) && size > 0 ? Math.Min(size, 1000) : 50;
        var count = await store.CountAsync(organizationId, context.RequestAborted);
        var pages = Math.Max(1, (count + pageSize - 1) / pageSize);
        var pageText = query["page"].ToString();
        long page = 1;
        if (pageText.Length > 0 && !(long.TryParse(pageText, NumberStyles.None, CultureInfo.InvariantCulture, out page) && page >= 1 && page <= pages))
        {
            await WriteAsync(context, 404, """{"detail":"Invalid page."}"""u8.ToArray());
            return;
        }

        var rows = await store.PageAsync(organizationId, (page - 1) * pageSize, pageSize, context.RequestAborted);
        var url = $"http://{context.Request.Host}{context.Request.Path}?page_size={pageSize}";
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json; charset=utf-8";
        using (var writer = new Utf8JsonWriter(context.Response.BodyWriter))
        {
            writer.WriteStartObject();
            writer.WriteNumber("count", count);
            if (page < pages)
            {
                writer.WriteString("next", $"{url}&page={page + 1}");
            }
            else
            {
                writer.WriteNull("next");
            }

            if (page > 1)
            {
                writer.WriteString("previous", page == 2 ? url : $"{url}&page={page - 1}");
            }
            else
            {
                writer.WriteNull("previous");
            }

            writer.WriteStartArray("results");
            foreach (var row in rows)
            {
                WriteSource(writer, row, full: true);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        await context.Response.BodyWriter.FlushAsync(context.RequestAborted);
    }

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request)
    {
        var reader = request.BodyReader;
        while (true)
        {
            var result = await reader.ReadAsync();
            if (result.IsCompleted || result.Buffer.Length > 1024 * 1024)
            {
                var bytes = result.Buffer.ToArray();
                reader.AdvanceTo(result.Buffer.End);
                return bytes;
            }

            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    private static async Task WriteJsonAsync(HttpContext context, SourceRecord source, bool full)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json; charset=utf-8";
        using (var writer = new Utf8JsonWriter(context.Response.BodyWriter))
        {
            WriteSource(writer, source, full);
        }

        await context.Response.BodyWriter.FlushAsync(context.RequestAborted);
    }

    private static void WriteSource(Utf8JsonWriter writer, SourceRecord source, bool full)
    {
        writer.WriteStartObject();
        writer.WriteNumber("id", source.Id);
        writer.WriteString("account_name", source.AccountName);
        writer.WriteString("type", source.Type);
        if (full)
        {
            writer.WriteString("created_at", DateTimeOffset.FromUnixTimeMilliseconds(source.CreatedAt).UtcDateTime
                .ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
            writer.WriteBoolean("is_fully_configured", source.IsFullyConfigured);
        }

        writer.WriteEndObject();
    }

    private static Task WriteAsync(HttpContext context, int status, byte[] body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        context.Response.ContentLength = body.Length;
        return context.Response.Body.WriteAsync(body).AsTask();
    }
}

internal readonly record struct SourceRecord(long Id, string AccountName, string Type, long CreatedAt, bool IsFullyConfigured, long Version);

internal abstract class Store
{
    protected const string GetSql = """
        SELECT id, account_name, type, created_at, is_fully_configured, version FROM sources
        WHERE id = @id AND organization_id = @org AND deleted_at IS NULL
        """;

    protected const string CountSql = "SELECT COUNT(*) FROM sources WHERE organization_id = @org AND deleted_at IS NULL";

    protected const string PageSql = """
        SELECT id, account_name, type, created_at, is_fully_configured, version FROM sources
        WHERE organization_id = @org AND deleted_at IS NULL ORDER BY id LIMIT @limit OFFSET @offset
        """;

    public abstract Task<long> OrganizationIdAsync(string name);

    public abstract Task<SourceRecord?> GetAsync(long org, long id, CancellationToken cancellationToken);

    public abstract Task<SourceRecord?> UpdateConfigAsync(long org, long id, string patch, long now, CancellationToken cancellationToken);

    public abstract Task<long> CountAsync(long org, CancellationToken cancellationToken);

    public abstract Task<List<SourceRecord>> PageAsync(long org, long offset, int limit, CancellationToken cancellationToken);

    protected static SourceRecord Read(DbDataReader reader) =>
        new(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3), reader.GetBoolean(4), reader.GetInt64(5));
}

/// <summary>
/// SQLite: a pool of open connections, each set up once (WAL, synchronous=FULL, busy timeout) with
/// its statements prepared once. Writers queue for one writer connection that group-commits them
/// as Caravan does (one transaction and one fsync for all that queued meanwhile): the limit of
/// durable UPDATEs on this disk, not of a busy handler's sleeps or of one fsync per request.
/// </summary>
internal sealed class SqliteStore : Store
{
    private const string UpdateSql = """
        UPDATE sources SET settings = json_patch(settings, @patch), version = version + 1, updated_at = @now
        WHERE id = @id AND organization_id = @org AND deleted_at IS NULL
        RETURNING id, account_name, type, created_at, is_fully_configured, version
        """;

    private readonly ConcurrentBag<Connection> _pool = [];
    private readonly Channel<PendingUpdate> _updates = Channel.CreateUnbounded<PendingUpdate>();
    private readonly string _connectionString;

    public SqliteStore(string connectionString)
    {
        _connectionString = connectionString;
        _ = Task.Run(WriteLoopAsync);
    }

    public override async Task<long> OrganizationIdAsync(string name)
    {
        var connection = Rent();
        try
        {
            using var command = connection.Raw.CreateCommand();
            command.CommandText = "SELECT id FROM organizations WHERE name = @name";
            command.Parameters.AddWithValue("@name", name);
            return Convert.ToInt64(await command.ExecuteScalarAsync() ?? throw new InvalidOperationException($"No organization {name}."), CultureInfo.InvariantCulture);
        }
        finally
        {
            _pool.Add(connection);
        }
    }

    public override Task<SourceRecord?> GetAsync(long org, long id, CancellationToken cancellationToken)
    {
        var connection = Rent();
        try
        {
            connection.Get.Parameters["@id"].Value = id;
            connection.Get.Parameters["@org"].Value = org;
            using var reader = connection.Get.ExecuteReader();
            return Task.FromResult<SourceRecord?>(reader.Read() ? Read(reader) : null);
        }
        finally
        {
            _pool.Add(connection);
        }
    }

    public override Task<SourceRecord?> UpdateConfigAsync(long org, long id, string patch, long now, CancellationToken cancellationToken)
    {
        var update = new PendingUpdate(org, id, patch, now);
        _updates.Writer.TryWrite(update);
        return update.Answer.Task;
    }

    /// <summary>
    /// The one writer: everything queued runs in one transaction with one commit (one fsync), and
    /// each update is answered after that commit, as Caravan's group commit does; one queued
    /// update alone is a transaction of one.
    /// </summary>
    private async Task WriteLoopAsync()
    {
        var connection = new Connection(_connectionString);
        using var begin = connection.Raw.CreateCommand();
        begin.CommandText = "BEGIN IMMEDIATE";
        begin.Prepare();
        using var commit = connection.Raw.CreateCommand();
        commit.CommandText = "COMMIT";
        commit.Prepare();
        var batch = new List<(PendingUpdate Update, SourceRecord? Row)>();
        while (await _updates.Reader.WaitToReadAsync())
        {
            while (batch.Count < 256 && _updates.Reader.TryRead(out var pending))
            {
                batch.Add((pending, null));
            }

            try
            {
                begin.ExecuteNonQuery();
                var update = connection.Update;
                for (var i = 0; i < batch.Count; i++)
                {
                    var pending = batch[i].Update;
                    update.Parameters["@patch"].Value = pending.Patch;
                    update.Parameters["@now"].Value = pending.Now;
                    update.Parameters["@id"].Value = pending.Id;
                    update.Parameters["@org"].Value = pending.Org;
                    using var reader = update.ExecuteReader();
                    batch[i] = (pending, reader.Read() ? Read(reader) : null);
                }

                commit.ExecuteNonQuery();
                foreach (var (pending, row) in batch)
                {
                    pending.Answer.TrySetResult(row);
                }
            }
            catch (Exception exception)
            {
                using (var rollback = connection.Raw.CreateCommand())
                {
                    rollback.CommandText = "ROLLBACK";
                    try
                    {
                        rollback.ExecuteNonQuery();
                    }
                    catch (SqliteException)
                    {
                        // No transaction left to roll back.
                    }
                }

                foreach (var (pending, _) in batch)
                {
                    pending.Answer.TrySetException(exception);
                }
            }

            batch.Clear();
        }
    }

    private sealed record PendingUpdate(long Org, long Id, string Patch, long Now)
    {
        public TaskCompletionSource<SourceRecord?> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public override Task<long> CountAsync(long org, CancellationToken cancellationToken)
    {
        var connection = Rent();
        try
        {
            connection.Count.Parameters["@org"].Value = org;
            return Task.FromResult(Convert.ToInt64(connection.Count.ExecuteScalar(), CultureInfo.InvariantCulture));
        }
        finally
        {
            _pool.Add(connection);
        }
    }

    public override Task<List<SourceRecord>> PageAsync(long org, long offset, int limit, CancellationToken cancellationToken)
    {
        var connection = Rent();
        try
        {
            var page = connection.Page;
            page.Parameters["@org"].Value = org;
            page.Parameters["@limit"].Value = limit;
            page.Parameters["@offset"].Value = offset;
            var rows = new List<SourceRecord>(limit);
            using var reader = page.ExecuteReader();
            while (reader.Read())
            {
                rows.Add(Read(reader));
            }

            return Task.FromResult(rows);
        }
        finally
        {
            _pool.Add(connection);
        }
    }

    private Connection Rent() => _pool.TryTake(out var connection) ? connection : new Connection(_connectionString);

    private sealed class Connection
    {
        public Connection(string connectionString)
        {
            Raw = new SqliteConnection(new SqliteConnectionStringBuilder(connectionString) { Pooling = false }.ToString());
            Raw.Open();
            using (var pragma = Raw.CreateCommand())
            {
                pragma.CommandText = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 30000;";
                pragma.ExecuteNonQuery();
            }

            Get = Prepare(GetSql, "@id", "@org");
            Update = Prepare(UpdateSql, "@patch", "@now", "@id", "@org");
            Count = Prepare(CountSql, "@org");
            Page = Prepare(PageSql, "@org", "@limit", "@offset");
        }

        public SqliteConnection Raw { get; }

        public SqliteCommand Get { get; }

        public SqliteCommand Update { get; }

        public SqliteCommand Count { get; }

        public SqliteCommand Page { get; }

        private SqliteCommand Prepare(string sql, params string[] names)
        {
            var command = Raw.CreateCommand();
            command.CommandText = sql;
            foreach (var name in names)
            {
                command.Parameters.Add(new SqliteParameter(name, null));
            }

            command.Prepare();
            return command;
        }
    }
}

/// <summary>PostgreSQL: Npgsql's pool with automatic statement preparation; a plain UPDATE per PATCH.</summary>
internal sealed class PostgresStore : Store
{
    private const string UpdateSql = """
        UPDATE sources SET settings = (settings::jsonb || @patch::jsonb)::text, version = version + 1, updated_at = @now
        WHERE id = @id AND organization_id = @org AND deleted_at IS NULL
        RETURNING id, account_name, type, created_at, is_fully_configured, version
        """;

    private readonly NpgsqlDataSource _dataSource;

    public PostgresStore(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { ApplicationName = "caravan-baseline", MaxAutoPrepare = 16 };
        _dataSource = NpgsqlDataSource.Create(builder);
    }

    public override async Task<long> OrganizationIdAsync(string name)
    {
        await using var command = _dataSource.CreateCommand("SELECT id FROM organizations WHERE name = @name");
        command.Parameters.AddWithValue("name", name);
        return Convert.ToInt64(await command.ExecuteScalarAsync() ?? throw new InvalidOperationException($"No organization {name}."), CultureInfo.InvariantCulture);
    }

    public override async Task<SourceRecord?> GetAsync(long org, long id, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand(GetSql);
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("org", org);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader) : null;
    }

    public override async Task<SourceRecord?> UpdateConfigAsync(long org, long id, string patch, long now, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand(UpdateSql);
        command.Parameters.AddWithValue("patch", patch);
        command.Parameters.AddWithValue("now", now);
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("org", org);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader) : null;
    }

    public override async Task<long> CountAsync(long org, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand(CountSql);
        command.Parameters.AddWithValue("org", org);
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture);
    }

    public override async Task<List<SourceRecord>> PageAsync(long org, long offset, int limit, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand(PageSql);
        command.Parameters.AddWithValue("org", org);
        command.Parameters.AddWithValue("limit", limit);
        command.Parameters.AddWithValue("offset", offset);
        var rows = new List<SourceRecord>(limit);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(Read(reader));
        }

        return rows;
    }
}

using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Query;

/// <summary>What the query tests share: sending a query, and a PostgreSQL database with data to read.</summary>
internal static class QueryKit
{
    public static string Url(long id) => SourceRoutes.Url(id, "query");

    public static string Body(string sql, int? maxRows = null, int? timeoutMs = null, string? uid = null)
    {
        var body = new JsonObject { ["sql"] = sql };
        if (maxRows is not null)
        {
            body["max_rows"] = maxRows;
        }

        if (timeoutMs is not null)
        {
            body["timeout_ms"] = timeoutMs;
        }

        if (uid is not null)
        {
            body["uid"] = uid;
        }

        return body.ToJsonString();
    }

    public static Task<HttpResponseMessage> QueryAsync(this HttpClient client, long id, string body, string? accept = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, Url(id)) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (accept is not null)
        {
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(accept));
        }

        return client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }

    public static Task<JsonNode> QueryAsync(this HttpClient client, long id, string sql, System.Net.HttpStatusCode status, int? maxRows = null, int? timeoutMs = null, string? uid = null) =>
        client.QueryAsync(id, Body(sql, maxRows, timeoutMs, uid)).Expect(status);

    public static List<JsonNode?> Rows(JsonNode answer) => [.. answer["rows"]!.AsArray()];

    /// <summary>Runs statements on a scratch database as the server's administrator.</summary>
    public static Task AdminAsync(this ScratchDatabase db, string sql) => Pg.ExecuteAsync(sql, db.Database);

    /// <summary>A table <c>notes</c> the role may read: a1 and a2 are alice's, b1 is bob's, and a policy shows the rows of <c>caravan.uid</c>.</summary>
    public static Task NotesOfAliceAndBobAsync(this ScratchDatabase db) => db.AdminAsync($"""
        CREATE TABLE notes (owner text, body text);
        INSERT INTO notes VALUES ('alice', 'a1'), ('alice', 'a2'), ('bob', 'b1');
        ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
        CREATE POLICY own ON notes USING (owner = current_setting('caravan.uid', true));
        GRANT SELECT ON notes TO {db.Role};
        """);

    public static async Task<long> CountAsync(this ScratchDatabase db, string table) => (long)(await db.ScalarAsync($"SELECT count(*) FROM {table}"))!;

    /// <summary>One value read on a fresh connection of the administrator's to the scratch database.</summary>
    public static Task<object?> ScalarAsync(this ScratchDatabase db, string sql) => Pg.ScalarAsync(sql, db.Database);
}

using System.Net;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Mcp;
using Caravan.Api.Tests.Query;
using Caravan.Api.Tests.Sources;

namespace Caravan.Api.Tests.Tokens;

/// <summary>
/// Queries with a token on a real PostgreSQL (<c>CARAVAN_TEST_POSTGRES</c>): the token's uid is
/// the one row-level security sees (<c>caravan.uid</c>), on the query route and through
/// <c>run_query</c>; another uid is refused; a <c>read</c> token queries nothing.
/// </summary>
public sealed class TokenQueryTests(CaravanApp app)
{
    private const string Notes = "SELECT body FROM notes ORDER BY body";

    [Fact]
    public async Task Alices_token_sees_only_alices_rows_and_cannot_ask_for_bobs()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await db.NotesOfAliceAndBobAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        using var alice = app.TokenClient(await org.MintAsync($$"""{"uid": "alice", "srcs": ["{{id}}"]}"""));
        using var bob = app.TokenClient(await org.MintAsync($$"""{"sub": "bob", "src": "{{id}}"}"""));

        var hers = await alice.QueryAsync(id, Notes, HttpStatusCode.OK);
        var same = await alice.QueryAsync(id, Notes, HttpStatusCode.OK, uid: "alice");
        var his = await bob.QueryAsync(id, Notes, HttpStatusCode.OK);

        Assert.Equal(["a1", "a2"], QueryKit.Rows(hers).Select(r => r![0]!.GetValue<string>()));
        Assert.Equal(["a1", "a2"], QueryKit.Rows(same).Select(r => r![0]!.GetValue<string>()));
        Assert.Equal(["b1"], QueryKit.Rows(his).Select(r => r![0]!.GetValue<string>()));
        var refused = await alice.QueryAsync(id, Notes, HttpStatusCode.BadRequest, uid: "bob");
        Assert.Equal(["uid"], refused["errors"]!.AsObject().Select(p => p.Key));

        // The statement cannot set the uid itself (issue #12's statement check).
        await alice.QueryAsync(id, "SELECT set_config('caravan.uid', 'bob', true), body FROM notes", HttpStatusCode.BadRequest);

        await using var agent = await McpKit.ConnectAsync(app, await org.MintAsync($$"""{"uid": "alice", "srcs": [{{id}}]}"""));
        var rows = (await agent.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = Notes })).Ok().GetProperty("rows");
        Assert.Equal(["a1", "a2"], rows.EnumerateArray().Select(r => r[0].GetString()));
        var (code, message) = (await agent.CallAsync("run_query", new() { ["source_id"] = id, ["sql"] = Notes, ["uid"] = "bob" })).Error();
        Assert.Equal("invalid", code);
        Assert.StartsWith("Invalid uid: This token is for another uid", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_read_token_cannot_query()
    {
        Assert.SkipWhen(Pg.Missing, Pg.NoServer);
        await using var db = await ScratchDatabase.CreateAsync();
        await db.NotesOfAliceAndBobAsync();
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(db.Body());
        using var reader = app.TokenClient(await org.MintAsync($$"""{"uid": "alice", "srcs": ["{{id}}"], "scopes": ["read"]}"""));

        var answer = await reader.SendAsync("POST", QueryKit.Url(id), QueryKit.Body(Notes));

        answer.AssertExactly(HttpStatusCode.Forbidden, TokenKit.NotAllowed);
        (await reader.GetRawAsync($"/api/v1/sources/{id}/schemas/")).AssertStatus(HttpStatusCode.OK);
    }
}

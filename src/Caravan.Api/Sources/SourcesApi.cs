using System.Text.Json.Nodes;
using Caravan.Api.Auth;
using Caravan.Api.Connectivity;
using Caravan.Api.Data;
using Caravan.Api.Hosting;
using Caravan.Api.Connectors;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Net.Http.Headers;
using Microsoft.OpenApi;
using Caravan.Api.Tokens;

namespace Caravan.Api.Sources;

/// <summary>The camelAI-compatible sources routes (contract section 4).</summary>
public static class SourcesApi
{
    private static readonly HashSet<string> ReadOnlyConnectionFields =
        new(["id", "type", "created_at", "is_fully_configured"], StringComparer.Ordinal);

    public static IEndpointRouteBuilder MapSources(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/sources").RequireApiKey().WithTags("sources");

        group.MapGet("/", SourceListing.List).WithName("sources_list").WithSummary("List data sources")
            .TakesPage()
            .TakesQueryText(SourceListing.SearchParameter, "Extension: only sources whose name contains this text, ignoring case; `count` and the pages count those.")
            .TakesQueryText(SourceListing.IncludeParameter, "Extension: `last_test` adds `last_test` to each result: the source's last connection test "
                + "`{\"ok\", \"failed_step\", \"code\", \"duration_ms\", \"at\"}`, or null when never tested.")
            .Answers(StatusCodes.Status200OK, "A page of the organization's data sources, ordered by id.", SourcesOpenApi.PaginatedConnectionList)
            .Answers(StatusCodes.Status404NotFound, "The page does not exist (`Invalid page.`).", ApiDocs.Detail)
            .AllowTokens(TokenScope.Read);
        group.MapPost("/", Create).WithName("sources_create").WithSummary("Add connection")
            .AcceptsJson(SourcesOpenApi.ConnectionCreateRequest)
            .Answers(StatusCodes.Status200OK, "The source was created.", SourcesOpenApi.ConnectionCreated)
            .TakesIdempotencyKey();
        group.MapPost("/add/", AddLegacy).WithName("sources_add_create").WithSummary("Add connection (legacy route)")
            .AcceptsJson(SourcesOpenApi.ConnectionAddRequest)
            .Answers(StatusCodes.Status200OK, "The source was created; it is not fully configured yet.", SourcesOpenApi.Connection)
            .TakesIdempotencyKey();
        foreach (var type in SourceTypes.All.Where(t => t.AddRoute is not null))
        {
            group.MapPost(
                    $"/add/{type.AddRoute}/",
                    (HttpRequest request, SourceWriter writer, IdempotencyKeys idempotency, CancellationToken ct) => CreateOfType(request, writer, idempotency, type, ct))
                .WithName($"sources_add_{type.AddRoute}_create")
                .WithSummary($"Add {type.DisplayName} connection")
                .AcceptsJson(SourcesOpenApi.CreateRequest(type))
                .Answers(StatusCodes.Status200OK, "The source was created.", SourcesOpenApi.ConnectionCreated)
                .TakesIdempotencyKey();
        }

        // "add" and "test" are routes of their own: other methods on them are a 405, as in camelAI,
        // not a lookup of a source called "add". Outside the group, like the router's own 405s.
        foreach (var literal in new[] { "add", "test" })
        {
            routes.MapMethods($"/api/v1/sources/{literal}/", [HttpMethods.Get, HttpMethods.Put, HttpMethods.Patch, HttpMethods.Delete], MethodNotAllowed)
                .ExcludeFromDescription();
        }

        group.MapGet("/{id}/", Retrieve).WithMetadata(KeyCheckedInQuery.Instance).WithName("sources_retrieve").WithSummary("Get data source details")
            .TakesSourceId()
            .Answers(StatusCodes.Status200OK, "The data source.", SourcesOpenApi.Connection)
            .AllowTokens(TokenScope.Read);
        group.MapPut("/{id}/", (string id, HttpRequest request, SourceWriter writer, CancellationToken ct) => Rename(id, request, writer, true, ct))
            .WithName("sources_update").WithSummary("Update data source")
            .TakesSourceId().ChecksIfMatch()
            .AcceptsJson(SourcesOpenApi.ConnectionRequest)
            .Answers(StatusCodes.Status200OK, "The renamed data source.", SourcesOpenApi.Connection);
        group.MapPatch("/{id}/", (string id, HttpRequest request, SourceWriter writer, CancellationToken ct) => Rename(id, request, writer, false, ct))
            .WithName("sources_partial_update").WithSummary("Partial update data source")
            .TakesSourceId().ChecksIfMatch()
            .AcceptsJson(SourcesOpenApi.PatchedConnectionRequest)
            .Answers(StatusCodes.Status200OK, "The data source.", SourcesOpenApi.Connection);
        group.MapDelete("/{id}/", Delete).WithName("sources_destroy").WithSummary("Delete data source")
            .TakesSourceId().ChecksIfMatch()
            .Answers(StatusCodes.Status204NoContent, "Deleted; its secrets are erased.");
        group.MapPatch("/{id}/update-config/", UpdateConfig)
            .WithName("sources_update_config_partial_update").WithSummary("Update data source configuration")
            .WithMetadata(RateBucketMetadata.TestsWhen(Verifies))
            .TakesSourceId().ChecksIfMatch()
            .AcceptsJson(SourcesOpenApi.PatchedSourceConfigUpdateRequest)
            .Answers(StatusCodes.Status200OK, "The configuration was updated.", SourcesOpenApi.SourceConfigUpdated);
        group.MapGet("/{id}/config/", SourceConfigApi.Read)
            .WithName("sources_config_retrieve").WithSummary("Get data source configuration, secrets as fingerprints")
            .TakesSourceId()
            .Answers(
                StatusCodes.Status200OK,
                "The stored configuration: non-secret fields by value, secrets by state and fingerprint, never by value.",
                SourcesOpenApi.SourceConfig,
                (response, _) => response.Headers = new Dictionary<string, IOpenApiHeader>
                {
                    [HeaderNames.ETag] = new OpenApiHeader
                    {
                        Description = "The source's strong ETag, the same as on GET of the source; send it as If-Match.",
                        Schema = Schema.Text(null),
                    },
                });
        return routes;
    }

    private static IResult MethodNotAllowed(HttpContext context)
    {
        context.Response.Headers.Allow = HttpMethods.Post;
        return ApiResults.Detail(StatusCodes.Status405MethodNotAllowed, $"Method \"{context.Request.Method}\" not allowed.");
    }

    public static async Task<Results<Ok<ConnectionPage>, JsonHttpResult<DetailBody>>> List(
        HttpRequest request, Database database, CancellationToken cancellationToken)
    {
        var caller = request.HttpContext.Caller();
        var pageSize = Paging.ReadPageSize(request);
        var pageText = request.Query[Paging.PageParameter].ToString();
        var last = pageText == Paging.LastPage;
        if ((last ? 1 : Paging.ReadPageNumber(pageText)) is not { } wanted || wanted > long.MaxValue / pageSize)
        {
            return ApiResults.InvalidPage();
        }

        await using var lease = await database.LeaseReadAsync(cancellationToken);
        var seek = await SourceRows.SeekAsync(lease, caller.OrganizationId, (wanted - 1) * pageSize, cancellationToken);
        var count = seek.Count;
        var pages = Paging.PageCount(count, pageSize);
        var page = last ? pages : wanted;
        if (page > pages)
        {
            return ApiResults.InvalidPage();
        }

        if (page != wanted)
        {
            seek = await SourceRows.SeekAsync(lease, caller.OrganizationId, (page - 1) * pageSize, cancellationToken);
        }

        var results = await SourceRows.PageAsync(lease, caller.OrganizationId, seek, pageSize, cancellationToken);
        var links = Paging.PageLinks(request, page, pages);
        return TypedResults.Ok(new ConnectionPage(
            count,
            links.Next,
            links.Previous,
            results));
    }

    public static Task<IResult> Create(HttpRequest request, SourceWriter writer, IdempotencyKeys idempotency, CancellationToken cancellationToken) =>
        CreateOfType(request, writer, idempotency, routeType: null, cancellationToken);

    private static async Task<IResult> CreateOfType(
        HttpRequest request, SourceWriter writer, IdempotencyKeys idempotency, SourceType? routeType, CancellationToken cancellationToken)
    {
        var (input, claim) = await ReadIdempotentCreateAsync(request, idempotency, routeType, ChangeMode.Create, prepare: true, cancellationToken);
        if (input.Error is not null)
        {
            return input.Error;
        }

        return await idempotency.CreateAsync(
            request.HttpContext,
            claim,
            claim => writer.CreateAsync(
                request.HttpContext.Caller(), input.Type!, input.AccountName ?? input.Type!.DisplayName, input.Change!, input.PublicKeySql, claim, cancellationToken),
            created => new CreatedResponse(created.Row.Id, created.PublicKeySql),
            ApiJson.Context.CreatedResponse,
            cancellationToken);
    }

    /// <summary>The legacy route: <c>account_name</c> and <c>type</c> required, the type's fields optional.</summary>
    public static async Task<IResult> AddLegacy(HttpRequest request, SourceWriter writer, IdempotencyKeys idempotency, CancellationToken cancellationToken)
    {
        var (input, claim) = await ReadIdempotentCreateAsync(request, idempotency, routeType: null, ChangeMode.LegacyCreate, prepare: false, cancellationToken);
        if (input.Error is not null)
        {
            return input.Error;
        }

        return await idempotency.CreateAsync(
            request.HttpContext,
            claim,
            claim => writer.CreateAsync(request.HttpContext.Caller(), input.Type!, input.AccountName!, input.Change!, publicKeySql: null, claim, cancellationToken),
            created => created.Row.ToResponse(),
            ApiJson.Context.ConnectionResponse,
            cancellationToken);
    }

    /// <summary>
    /// A create body, read as <see cref="ReadCreateAsync"/> does, with its Idempotency-Key: a bad
    /// header, a replay or a 409 comes back as the error, before the body is checked (so a replay
    /// does no create work, such as generating a key pair, again).
    /// </summary>
    private static async Task<(CreateInput Input, IdempotencyClaim? Claim)> ReadIdempotentCreateAsync(
        HttpRequest request, IdempotencyKeys idempotency, SourceType? routeType, ChangeMode mode, bool prepare, CancellationToken cancellationToken)
    {
        if (IdempotencyKeys.ReadHeader(request, out var key) is { } badKey)
        {
            return (CreateInput.Answered(badKey), null);
        }

        var read = await JsonBody.ReadObjectAsync(request, cancellationToken);
        if (read.Error is not null)
        {
            return (CreateInput.Answered(read.Error), null);
        }

        // A type created from something else than its fields (FILE, from URLs) takes the unified route's body itself.
        if (mode == ChangeMode.Create && routeType is null
            && read.Body![SourceBodies.TypeField] is JsonValue named && named.TryGetValue<string>(out var typeName)
            && request.HttpContext.RequestServices.GetServices<ISourceImporter>().FirstOrDefault(i => i.Type == SourceTypes.Find(typeName)) is { } importer)
        {
            return (CreateInput.Answered(await importer.CreateAsync(request.HttpContext, read.Body, cancellationToken)), null);
        }

        IdempotencyClaim? claim = null;
        if (key is not null)
        {
            (var stored, claim) = await idempotency.BeginAsync(request, key, read.Body!, cancellationToken);
            if (stored is not null)
            {
                return (CreateInput.Answered(stored), null);
            }
        }

        return (CheckCreate(read.Body!, routeType, mode, prepare), claim);
    }

    internal sealed record CreateInput(SourceType? Type, string? AccountName, SourceChange? Change, string? PublicKeySql, IResult? Error)
    {
        /// <summary>The request ends here with <paramref name="answer"/>: a refusal, or a stored idempotent answer.</summary>
        public static CreateInput Answered(IResult answer) => new(null, null, null, null, answer);
    }

    /// <summary>
    /// Reads and checks a create body, collecting every problem; nothing is written here.
    /// <paramref name="prepare"/> runs the type's create work (such as generating a key pair).
    /// </summary>
    internal static async Task<CreateInput> ReadCreateAsync(
        HttpRequest request, SourceType? routeType, ChangeMode mode, bool prepare, CancellationToken cancellationToken)
    {
        var read = await JsonBody.ReadObjectAsync(request, cancellationToken);
        return read.Error is not null ? CreateInput.Answered(read.Error) : CheckCreate(read.Body!, routeType, mode, prepare);
    }

    private static CreateInput CheckCreate(JsonObject body, SourceType? routeType, ChangeMode mode, bool prepare)
    {
        var errors = new ValidationErrors();
        var legacy = mode == ChangeMode.LegacyCreate;
        var type = SourceBodies.ReadType(body, errors, routeType);
        var accountName = SourceBodies.ReadAccountName(body, errors, required: legacy);

        if (type is null)
        {
            return new CreateInput(null, null, null, null, ApiResults.Invalid(errors));
        }

        if (type.CreatedElsewhere is { } elsewhere)
        {
            errors.Add(SourceBodies.TypeField, elsewhere);
            return new CreateInput(null, null, null, null, ApiResults.Invalid(errors));
        }

        var change = SourceBodies.ReadFields(type, body, mode, errors, SourceBodies.AccountName, SourceBodies.TypeField);
        // The type's rules run even when some field was refused: every problem is reported together
        // (a field refused on its own is absent from the change, and its rules do not report it twice).
        type.Check(change, stored: null, errors);
        type.CheckGroups(change, stored: null, errors);

        var publicKeySql = errors.IsEmpty && prepare ? type.PrepareCreate(change, errors) : null;
        return errors.IsEmpty
            ? new CreateInput(type, accountName, change, publicKeySql, null)
            : new CreateInput(null, null, null, null, ApiResults.Invalid(errors));
    }

    public static async Task<Results<Ok<ConnectionResponse>, JsonHttpResult<DetailBody>>> Retrieve(
        string id, HttpContext context, KeyedReads reads, RateLimits limits, CancellationToken cancellationToken)
    {
        // The hottest route checks the key and reads the source in one query (KeyCheckedInQuery).
        var (caller, found) = await reads.FindSummaryAsync(ApiKeyFilter.Presented(context), RouteIds.Parse(id) ?? 0, cancellationToken);
        if (ApiKeyFilter.Admit(context, caller, limits, RateBucket.Requests) is { } refused)
        {
            return refused;
        }

        if (found is not { } source)
        {
            return ApiResults.NotFound();
        }

        context.Response.Headers.ETag = source.ETag;
        return TypedResults.Ok(source.Connection);
    }

    private static async Task<IResult> Rename(string id, HttpRequest request, SourceWriter writer, bool isPut, CancellationToken cancellationToken)
    {
        if (RouteIds.Parse(id) is not { } sourceId)
        {
            return ApiResults.NotFound();
        }

        var read = await JsonBody.ReadObjectAsync(request, cancellationToken);
        if (read.Error is not null)
        {
            return read.Error;
        }

        var body = read.Body!;
        var errors = new ValidationErrors();
        var accountName = SourceBodies.ReadAccountName(body, errors, required: isPut);
        foreach (var (name, _) in body)
        {
            if (name != SourceBodies.AccountName && !ReadOnlyConnectionFields.Contains(name))
            {
                errors.Add(name, "Not a valid field here; change configuration with update-config.");
            }
        }

        // 404 and 412 outrank 400: whether an id exists, or changed, must not depend on the body.
        var outcome = await writer.RenameAsync(
            request.HttpContext.Caller(), sourceId, errors.IsEmpty ? accountName : null, EntityTags.IfMatch(request), cancellationToken);
        return outcome switch
        {
            { CurrentTag: { } current } => ApiResults.Stale(current),
            { Row: null } => ApiResults.NotFound(),
            _ when !errors.IsEmpty => ApiResults.Invalid(errors),
            { Row: { } row } => WithTag(request, row, TypedResults.Ok(row.ToResponse())),
        };
    }

    public static async Task<IResult> Delete(string id, HttpContext context, SourceWriter writer, CancellationToken cancellationToken)
    {
        if (RouteIds.Parse(id) is not { } sourceId)
        {
            return ApiResults.NotFound();
        }

        var outcome = await writer.DeleteAsync(context.Caller(), sourceId, EntityTags.IfMatch(context.Request), cancellationToken);
        RetireQueryPool(context, outcome, sourceId);
        if (outcome is { Row: { } deleted, CurrentTag: null })
        {
            // What the type keeps outside the row goes before the answer (a sweep finishes it if this is interrupted).
            foreach (var holdings in context.RequestServices.GetServices<ISourceHoldings>().Where(h => h.Type.Name == deleted.Type))
            {
                await holdings.EraseAsync(sourceId, CancellationToken.None);
            }
        }

        return outcome switch
        {
            { CurrentTag: { } current } => ApiResults.Stale(current),
            { Row: null } => ApiResults.NotFound(),
            _ => TypedResults.NoContent(),
        };
    }

    public static async Task<IResult> UpdateConfig(
        string id, HttpRequest request, SourceWriter writer, ConnectionTester tester, CancellationToken cancellationToken)
    {
        if (RouteIds.Parse(id) is not { } sourceId)
        {
            return ApiResults.NotFound();
        }

        var read = await JsonBody.ReadObjectAsync(request, cancellationToken);
        if (read.Error is not null)
        {
            return read.Error;
        }

        if (Verifies(request)
            && await ConnectivityApi.VerifySelectionAsync(request, writer, tester, sourceId, read.Body!, cancellationToken) is { } refused)
        {
            return refused;
        }

        var outcome = await writer.UpdateConfigAsync(request.HttpContext.Caller(), sourceId, read.Body!, EntityTags.IfMatch(request), cancellationToken);
        RetireQueryPool(request.HttpContext, outcome, sourceId);
        return outcome switch
        {
            { CurrentTag: { } current } => ApiResults.Stale(current),
            { Errors: { } errors } => ApiResults.Invalid(errors),
            { Row: { } row } => WithTag(request, row, TypedResults.Ok(new UpdateConfigResponse(row.Id, row.AccountName, row.Type))),
            _ => ApiResults.NotFound(),
        };
    }

    /// <summary>update-config with <c>?verify=true</c> checks the selection on the database (and counts as a test).</summary>
    private static bool Verifies(HttpRequest request) => string.Equals(request.Query["verify"], "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// A changed or deleted source's query pool and SSH session close at once (other replicas
    /// notice the new version on their next query).
    /// </summary>
    private static void RetireQueryPool(HttpContext context, WriteOutcome outcome, long sourceId)
    {
        if (outcome.Row is not null)
        {
            context.RequestServices.GetService<Query.QueryPools>()?.Retire(sourceId, outcome.Row.OrganizationId);
            context.RequestServices.GetService<SshTunnels>()?.Close(sourceId);
        }
    }

    private static IResult WithTag(HttpRequest request, SourceRow row, IResult result)
    {
        request.HttpContext.Response.Headers.ETag = EntityTags.For(row);
        return result;
    }
}

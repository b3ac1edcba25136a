using Caravan.Api.Auth;
using Caravan.Api.Connectivity;
using Caravan.Api.Hosting;
using Caravan.Api.Sources;
using Microsoft.Net.Http.Headers;
using Caravan.Api.Tokens;

namespace Caravan.Api.Query;

/// <summary>The read-only query route (contract section 8, <c>POST /api/v1/sources/{id}/query/</c>).</summary>
public static class QueryApi
{
    public const string OperationId = "sources_query_create";

    public static IServiceCollection AddQuery(this IServiceCollection services)
    {
        services.AddOptions<QueryOptions>().BindConfiguration(QueryOptions.Section)
            .Validate(o => o.MaxRowsLimit is >= 1 and <= QueryOptions.HighestMaxRowsLimit,
                "Caravan__Query__MaxRowsLimit must be from 1 to 10000000 (rows; the default is 100000).")
            .Validate(o => o.MaxResultBytes >= 1024, "Caravan__Query__MaxResultBytes must be at least 1024 (bytes).")
            .Validate(o => o.MaxBufferedResultBytes >= 1024,
                "Caravan__Query__MaxBufferedResultBytes must be at least 1024 (bytes held by all running queries together; the default is 268435456).")
            .Validate(o => o.MaxConcurrentPerSource is >= 1 and <= 1000, "Caravan__Query__MaxConcurrentPerSource must be from 1 to 1000.")
            .Validate(o => o.ConcurrencyWaitMilliseconds is >= 0 and <= 60_000, "Caravan__Query__ConcurrencyWaitMilliseconds must be from 0 to 60000.")
            .Validate(o => o.MaxPools is >= 1 and <= 100_000, "Caravan__Query__MaxPools must be from 1 to 100000.")
            .Validate(o => o.PoolIdleSeconds is >= 1 and <= 86_400, "Caravan__Query__PoolIdleSeconds must be from 1 to 86400.")
            .ValidateOnStart();
        services.AddSingleton<QueryPools>();
        services.AddSingleton<PreparedSources>();
        services.AddSingleton<QueryConcurrency>();
        services.AddSingleton<ResultMemory>();
        services.AddSingleton<QueryGateway>();

        return services;
    }

    public static IEndpointRouteBuilder MapQuery(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/sources").RequireApiKey().WithTags("query");
        group.MapPost("/{id}/query/", Run).WithName(OperationId).WithSummary("Run a read-only query")
            .WithDescription("Runs one read-only statement on the source's database. The database enforces read-only wherever it can "
                + "(docs/query.md says how, per type); a write is refused with 400 on `sql` and changes nothing. "
                + "Rows stream as they arrive; a failure after the first row is told in the body (see docs/query.md).")
            .WithMetadata(RateBucketMetadata.Tests, KeyCheckedInQuery.Instance)
            .TakesSourceId()
            .AcceptsJson(QueryOpenApi.QueryRequest)
            .AnswersQueryResult()
            .Answers(StatusCodes.Status406NotAcceptable, "The Accept header names none of application/json, text/csv, application/x-ndjson.", ApiDocs.Detail)
            .Answers(StatusCodes.Status409Conflict, "The source is not fully configured, or it is a FILE source with no file converted yet (`not_configured`).", QueryOpenApi.QueryFailure)
            .Answers(StatusCodes.Status422UnprocessableEntity, "The database refused or failed the statement: syntax, missing table, permission.", QueryOpenApi.QueryFailure)
            .Answers(StatusCodes.Status502BadGateway, "The database could not be reached or refused the login.", QueryOpenApi.QueryFailure)
            .Answers(StatusCodes.Status503ServiceUnavailable, "Too many queries are running on this source (`source_busy`); retry after `Retry-After` seconds.", QueryOpenApi.QueryFailure)
            .Answers(StatusCodes.Status504GatewayTimeout, "The time limit passed; the statement was cancelled (`timeout`).", QueryOpenApi.QueryFailure)
            .AllowTokens(TokenScope.Query);
        return routes;
    }

    public static async Task<IResult> Run(
        string id, HttpContext context, QueryGateway gateway, KeyedReads reads, RateLimits limits, CancellationToken cancellationToken)
    {
        // The key is checked in the same store query that reads the source (KeyCheckedInQuery): one
        // round trip before the database is reached. Still 401, then 429, before anything else.
        var (caller, source) = await reads.FindStoredAsync(ApiKeyFilter.Presented(context), RouteIds.Parse(id) ?? 0, cancellationToken);

        if (ApiKeyFilter.Admit(context, caller, limits, RateBucket.Tests) is { } refused)
        {
            return refused;
        }

        if (RouteIds.Parse(id) is not { } sourceId)
        {
            return ApiResults.NotFound();
        }

        var read = await JsonBody.ReadObjectAsync(context.Request, cancellationToken);
        if (read.Error is not null)
        {
            return read.Error;
        }

        var (request, errors) = QueryRequestReader.Read(read.Body!, gateway.MaxRowsLimit);
        if (request is null)
        {
            return ApiResults.Invalid(errors);
        }

        if (Negotiate(context.Request) is not { } format)
        {
            return ApiResults.Detail(StatusCodes.Status406NotAcceptable, "Could not satisfy the request Accept header.");
        }

        var sink = new HttpRowSink(context.Response, format);
        var failure = await gateway.RunAsync(context.Caller(), sourceId, new QueryGateway.Found(source), request, sink, cancellationToken);
        if (failure is null || failure.Kind == QueryFailureKind.Aborted)
        {
            return Results.Empty;
        }

        if (sink.Started)
        {
            await sink.FailAsync(failure);
            return Results.Empty;
        }

        return Answer(context, failure);
    }

    /// <summary>The answer for a failure before any row was sent.</summary>
    public static IResult Answer(HttpContext context, QueryFailure failure)
    {
        switch (failure.Kind)
        {
            case QueryFailureKind.NotFound:
                return ApiResults.NotFound();
            case QueryFailureKind.Invalid:
                var errors = new ValidationErrors();
                errors.Add(failure.Field ?? ValidationErrors.NonField, failure.Message);
                return ApiResults.Invalid(errors);
            case QueryFailureKind.Busy:
                context.Response.Headers.RetryAfter = "1";
                break;
        }

        return TypedResults.Json(new ConnectivityFailureBody(failure.Message, failure.Code), ApiJson.Context.ConnectivityFailureBody,
            statusCode: failure.Status);
    }

    /// <summary>The format the Accept header asks for (JSON when it names none); null when it accepts none of them.</summary>
    public static QueryFormat? Negotiate(HttpRequest request)
    {
        var accept = request.Headers.Accept;
        if (accept.Count == 0 || !MediaTypeHeaderValue.TryParseList(accept, out var types) || types.Count == 0)
        {
            return QueryFormat.Json;
        }

        foreach (var type in types.Where(t => t.Quality is not 0).OrderByDescending(t => t.Quality ?? 1))
        {
            var name = type.MediaType.Value?.ToLowerInvariant();
            QueryFormat? format = name switch
            {
                "application/json" or "application/*" or "*/*" => QueryFormat.Json,
                "text/csv" or "text/*" => QueryFormat.Csv,
                "application/x-ndjson" or "application/ndjson" or "application/jsonl" => QueryFormat.Ndjson,
                _ => null,
            };
            if (format is not null)
            {
                return format;
            }
        }

        return null;
    }
}

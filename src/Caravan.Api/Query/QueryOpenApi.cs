using Caravan.Api.Connectivity;
using Caravan.Api.Hosting;
using Microsoft.OpenApi;

namespace Caravan.Api.Query;

/// <summary>The bodies of the query route in the OpenAPI document (contract section 8).</summary>
internal static class QueryOpenApi
{
    public static ApiSchema QueryRequest { get; } = new("QueryRequest", _ => Schema.Object(
        "One read-only statement.",
        ("sql", Schema.Text("Exactly one statement; a trailing ';' and comments are allowed."), true),
        ("max_rows", Schema.Integer("Rows to return at most (default 1000); larger values are clamped to the server's ceiling, 100000 unless its operator configured another. `truncated` says when there were more."), false),
        ("timeout_ms", Schema.Integer("Time limit in milliseconds (default 30000, larger values are clamped to 300000); the statement is cancelled in the database."), false),
        ("uid", Schema.Text("Handed to the database for row-level security (PostgreSQL: the setting `caravan.uid`, set locally). Refused where the database cannot take it."), false)));

    public static ApiSchema QueryResult { get; } = new("QueryResult", _ => Schema.Object(
        "The result of a statement. With `Accept: application/x-ndjson` the same parts come as lines: `{\"columns\"}`, one JSON array per row, then `{\"row_count\", \"truncated\", \"duration_ms\"}` (with `truncated_by` when cut; or `{\"error\"}`); with `Accept: text/csv` a header row and the rows (RFC 4180), and over HTTP/2 the trailers `X-Caravan-Row-Count`, `X-Caravan-Truncated` and `X-Caravan-Truncated-By`.",
        ("columns", Schema.ArrayOf(Schema.Object(
            null, ("name", Schema.Text("The column's name."), true), ("type", Schema.Text("The database's name for the column's type."), true))), true),
        ("rows", Schema.ArrayOf(Schema.ArrayOf(new OpenApiSchema())), true),
        ("row_count", Schema.Integer("Rows returned."), true),
        ("truncated", Schema.Boolean("True when the statement had more rows than max_rows, or more bytes than the server's cap."), true),
        ("truncated_by", Schema.Enum([QueryLimits.MaxRows, QueryLimits.MaxResultBytes, QueryLimits.MaxBufferedResultBytes],
            "Present only when `truncated` is true: the limit that cut the result. `max_rows`: there were more rows. "
            + "`max_result_bytes`: the next row, or a value in it, would pass the server's cap on the bytes of one result (values are "
            + "bounded before they are read: select narrower columns or fewer rows). `max_buffered_result_bytes`: the server could not "
            + "hold the next row beside the other queries' results in time; retry shortly."), false),
        ("duration_ms", Schema.Integer("How long the query took."), true)));

    public static ApiSchema QueryFailure { get; } = new("QueryFailure", _ => Schema.Object(
        null,
        ("detail", Schema.Text("What went wrong, for people; never a secret."), true),
        ("code", Schema.Enum(
            [.. ConnectivityOpenApi.FailureCodeNames, QueryCodes.NotConfigured, QueryCodes.SyntaxError, QueryCodes.UndefinedObject, QueryCodes.QueryFailed, QueryCodes.SourceBusy],
            "The stable failure code."), true)));

    /// <summary>The 200 of a query: the result as JSON, CSV or NDJSON, as the Accept header asks (<see cref="QueryApi.Negotiate"/>).</summary>
    public static TBuilder AnswersQueryResult<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.Answers(StatusCodes.Status200OK, "The result (streamed).", QueryResult, (response, _) =>
        {
            response.Content!["text/csv"] = new OpenApiMediaType { Schema = new OpenApiSchema { Type = JsonSchemaType.String, Description = "A header row, then the rows." } };
            response.Content["application/x-ndjson"] = new OpenApiMediaType { Schema = new OpenApiSchema { Type = JsonSchemaType.String, Description = "One JSON document per line." } };
        });
}

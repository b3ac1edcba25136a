using Caravan.Api.Connectors;
using Caravan.Api.Hosting;
using Microsoft.OpenApi;

namespace Caravan.Api.Connectivity;

/// <summary>The bodies of the connection tests and schema discovery in the OpenAPI document (contract section 8).</summary>
internal static class ConnectivityOpenApi
{
    private const string Ndjson = "application/x-ndjson";

    /// <summary>Every <see cref="FailureCodes"/> code.</summary>
    public static IReadOnlyList<string> FailureCodeNames { get; } =
    [
        FailureCodes.HostUnresolvable, FailureCodes.EgressDenied, FailureCodes.PortClosed, FailureCodes.Timeout, FailureCodes.TlsFailed,
        FailureCodes.TlsVerifyFailed, FailureCodes.SshHostKeyUnknown, FailureCodes.SshHostKeyMismatch, FailureCodes.AuthFailed, FailureCodes.DatabaseNotFound, FailureCodes.InsufficientPrivilege, FailureCodes.DriverError,
        FailureCodes.ResultTooLarge,
    ];

    public static ApiSchema ConnectionTestReport { get; } = new("ConnectionTestReport", _ => Schema.Object(
        "A staged connection test.",
        ("ok", Schema.Boolean("True when no step failed."), true),
        ("duration_ms", Schema.Integer("How long the whole test took."), true),
        ("steps", Schema.ArrayOf(Step()), true)));

    public static ApiSchema ConnectionTestStreamLine { get; } = new("ConnectionTestStreamLine", document => Schema.Object(
        "One line of a streamed test (`Accept: application/x-ndjson`): exactly one of `plan` (the steps, when known), "
            + "`step` (a step that just finished) or `report` (the last line, the same report as without streaming).",
        ("plan", Schema.ArrayOf(Schema.Text(null)), false),
        ("step", Step(), false),
        ("report", ConnectionTestReport.In(document), false)));

    public static ApiSchema SchemaDiscovery { get; } = new("SchemaDiscovery", _ => Schema.Object(
        null,
        ("kind", Schema.Enum([.. SourceTypes.All.Select(t => t.SchemaKind).Distinct()], "What the names are."), true),
        ("results", Schema.ArrayOf(Schema.Object(
            null, ("name", Schema.Text("The name."), true), ("selected", Schema.Boolean("Whether the stored selection names it."), true),
            ("columns", Schema.ArrayOf(Schema.Object(
                "Extension, for kind `tables` (FILE sources): the table's columns in order.",
                ("name", Schema.Text("The column's name."), true), ("type", Schema.Text("The column's type."), true))), false),
            ("description", Schema.Text("For kind `tools` (MCP sources): what the server says the tool does."), false),
            ("input_schema", new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Description = "For kind `tools` (MCP sources): the JSON Schema of the tool's arguments, as the server gives it.",
            }, false))), true)));

    public static ApiSchema ConnectivityFailure { get; } = new("ConnectivityFailure", _ => Schema.Object(
        null,
        ("detail", Schema.Text("What went wrong, for people; never a secret."), true),
        ("code", Schema.Enum(FailureCodeNames, "The stable failure code."), true)));

    /// <summary>
    /// The 200 of a test: the report, or with <c>Accept: application/x-ndjson</c> (extension) the
    /// same test streamed as it runs (<see cref="StreamedTest"/>).
    /// </summary>
    public static TBuilder AnswersTestReport<TBuilder>(this TBuilder builder, string description)
        where TBuilder : IEndpointConventionBuilder =>
        builder.Answers(
            StatusCodes.Status200OK,
            description + " With `Accept: application/x-ndjson` (extension) the answer streams one JSON line per event as the test runs: "
                + "`{\"plan\": [...]}`, `{\"step\": {...}}` as each step finishes, and `{\"report\": {...}}` last.",
            ConnectionTestReport,
            (response, document) => response.Content![Ndjson] = new OpenApiMediaType { Schema = ConnectionTestStreamLine.In(document) });

    private static OpenApiSchema Step() => Schema.Object(
        null,
        ("name", Schema.Enum(["resolve", "egress", "connect", "tls", "authenticate", "query", "schemas", "initialize", "tools/list"],
            "The step (`initialize` and `tools/list` for MCP sources)."), true),
        ("status", Schema.Enum(["ok", "failed", "skipped"], "What happened."), true),
        ("duration_ms", Schema.Integer("How long it took."), true),
        ("code", Schema.Nullable(Schema.Enum(FailureCodeNames, "The stable failure code of a failed step.")), true),
        ("message", Schema.Nullable(Schema.Text("What happened, for people; never a secret.")), true));
}

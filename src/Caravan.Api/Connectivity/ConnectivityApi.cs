using System.Text.Json.Serialization;
using Caravan.Api.Auth;
using Caravan.Api.Hosting;
using Caravan.Api.Sources;
using Caravan.Api.Connectors;
using Microsoft.AspNetCore.Http.HttpResults;
using Caravan.Api.Tokens;

namespace Caravan.Api.Connectivity;

public sealed record SchemaEntry(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("selected")] bool Selected,
    [property: JsonPropertyName("columns"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<ColumnEntry>? Columns = null,
    [property: JsonPropertyName("description"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Description = null,
    [property: JsonPropertyName("input_schema"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] System.Text.Json.JsonElement? InputSchema = null);

/// <summary>A column of a discovered table (FILE sources, whose entries are tables).</summary>
public sealed record ColumnEntry(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("type")] string Type);

public sealed record DiscoveryResponse(
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("results")] IReadOnlyList<SchemaEntry> Results);

public sealed record ConnectivityFailureBody(
    [property: JsonPropertyName("detail")] string Detail,
    [property: JsonPropertyName("code")] string Code);

/// <summary>Connection tests and schema discovery (contract section 8).</summary>
public static class ConnectivityApi
{
    public static IServiceCollection AddConnectivity(this IServiceCollection services)
    {
        services.AddOptions<ConnectivityOptions>().BindConfiguration(ConnectivityOptions.Section)
            .Validate(o => o.TestTimeoutSeconds is >= 1 and <= 60, "Caravan__Connectivity__TestTimeoutSeconds must be from 1 to 60.")
            .Validate(o => o.ConnectTimeoutSeconds is >= 1 and <= 60, "Caravan__Connectivity__ConnectTimeoutSeconds must be from 1 to 60.")
            .Validate(o => o.SshIdleSeconds is >= 1 and <= 86_400, "Caravan__Connectivity__SshIdleSeconds must be from 1 to 86400.")
            .ValidateOnStart();
        services.AddOptions<EgressOptions>().BindConfiguration(EgressOptions.Section)
            .Validate(o => ValidRanges(o.Deny), "Caravan__Egress__Deny must be a comma-separated list of CIDR ranges such as 10.0.0.0/8 or fd00::/8.")
            .Validate(o => ValidRanges(o.Allow), "Caravan__Egress__Allow must be a comma-separated list of CIDR ranges such as 10.0.0.0/8 or fd00::/8.")
            .ValidateOnStart();
        services.AddSingleton<EgressPolicy>();
        services.AddSingleton<SshTunnels>();
        services.AddSingleton<NetworkPath>();
        services.AddSingleton<ConnectionTester>();
        services.AddSingleton<LastTests>();

        return services;
    }

    public static IEndpointRouteBuilder MapConnectivity(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/sources").RequireApiKey().WithTags("connectivity");
        group.MapPost("/test/", TestUnsaved).WithName("sources_test_create").WithSummary("Test an unsaved connection")
            .WithMetadata(RateBucketMetadata.Tests)
            .AcceptsJson(SourcesOpenApi.ConnectionCreateRequest)
            .AnswersTestReport("The test ran (see `ok`); nothing was stored.");
        group.MapPost("/{id}/test/", TestStored).WithName("sources_test_stored_create").WithSummary("Test a data source's connection")
            .WithMetadata(RateBucketMetadata.Tests)
            .TakesSourceId()
            .AnswersTestReport("The test ran against the stored configuration (see `ok`); its outcome is kept as the source's `last_test`.");
        group.MapGet("/{id}/schemas/", Schemas).WithName("sources_schemas_list").WithSummary("Discover a data source's schemas")
            .WithMetadata(RateBucketMetadata.Tests)
            .TakesSourceId()
            .Answers(StatusCodes.Status200OK, "The schemas (databases, datasets) found, system ones excluded.", ConnectivityOpenApi.SchemaDiscovery)
            .Answers(StatusCodes.Status502BadGateway, "The database could not be reached or refused the request.", ConnectivityOpenApi.ConnectivityFailure)
            .AllowTokens(TokenScope.Read);
        return routes;
    }

    public static async Task<IResult> TestUnsaved(HttpRequest request, ConnectionTester tester, CancellationToken cancellationToken)
    {
        var input = await SourcesApi.ReadCreateAsync(request, routeType: null, ChangeMode.Create, prepare: false, cancellationToken);
        if (input.Error is not null)
        {
            return input.Error;
        }

        var connection = SourceConnections.Unsaved(input.Type!, input.Change!);
        if (StreamedTest.IsWanted(request))
        {
            return new StreamedTest((observer, token) => tester.TestAsync(connection, token, observer));
        }

        var report = await tester.TestAsync(connection, cancellationToken);
        return TypedResults.Json(report, ApiJson.Context.TestReport);
    }

    public static async Task<IResult> TestStored(
        string id, HttpContext context, SourceConnections sources, ConnectionTester tester, LastTests lastTests, CancellationToken cancellationToken)
    {
        if (RouteIds.Parse(id) is not { } sourceId
            || await sources.ConnectionAsync(context.Caller(), sourceId, cancellationToken) is not { } connection)
        {
            return ApiResults.NotFound();
        }

        // The outcome is kept for the list's include=last_test (extension), whichever way it is answered.
        var organizationId = context.Caller().OrganizationId;
        async Task<TestReport> RunAsync(ITestObserver? observer, CancellationToken token)
        {
            var report = await tester.TestAsync(connection, token, observer);
            await lastTests.RecordAsync(organizationId, sourceId, report, CancellationToken.None);
            return report;
        }

        if (StreamedTest.IsWanted(context.Request))
        {
            return new StreamedTest(RunAsync);
        }

        return TypedResults.Json(await RunAsync(null, cancellationToken), ApiJson.Context.TestReport);
    }

    public static async Task<IResult> Schemas(string id, HttpContext context, SourceConnections sources, ConnectionTester tester, CancellationToken cancellationToken)
    {
        if (RouteIds.Parse(id) is not { } sourceId
            || await sources.ConnectionAsync(context.Caller(), sourceId, cancellationToken) is not { } connection)
        {
            return ApiResults.NotFound();
        }

        try
        {
            var discovery = await tester.DiscoverAsync(connection, cancellationToken);
            var selected = connection.Type.SelectionField?.Name is { } field ? connection.Names(field).ToHashSet(StringComparer.Ordinal) : [];
            var everything = selected.Count == 0 && connection.Type.OffersAllWhenNoneSelected;
            return TypedResults.Json(
                new DiscoveryResponse(discovery.Kind, [.. discovery.Names.Select(n => new SchemaEntry(
                    n,
                    everything || selected.Contains(n),
                    discovery.Columns?.GetValueOrDefault(n)?.Select(c => new ColumnEntry(c.Name, c.Type)).ToList(),
                    discovery.Tools?.GetValueOrDefault(n)?.Description,
                    discovery.Tools?.GetValueOrDefault(n)?.InputSchema))]),
                ApiJson.Context.DiscoveryResponse);
        }
        catch (ConnectivityException failure)
        {
            return Unreachable(failure);
        }
    }

    /// <summary>
    /// update-config with <c>?verify=true</c>: every selected schema must exist on the database,
    /// checked against the configuration as it would be after the change. Null when all is well.
    /// </summary>
    public static async Task<IResult?> VerifySelectionAsync(
        HttpRequest request, SourceWriter writer, ConnectionTester tester, long id, System.Text.Json.Nodes.JsonObject body, CancellationToken cancellationToken)
    {
        var (connection, errors) = await writer.PreviewUpdateAsync(request.HttpContext.Caller(), id, body, cancellationToken);
        if (errors is not null)
        {
            return ApiResults.Invalid(errors);
        }

        if (connection is null || connection.Type.SelectionField?.Name is not { } field || !body.ContainsKey(field))
        {
            return null;
        }

        Discovery discovery;
        try
        {
            discovery = await tester.DiscoverAsync(connection, cancellationToken);
        }
        catch (ConnectivityException failure)
        {
            return Unreachable(failure);
        }

        var missing = connection.Names(field).Where(n => !discovery.Names.Contains(n, StringComparer.Ordinal)).ToList();
        if (missing.Count == 0)
        {
            return null;
        }

        var invalid = new ValidationErrors();
        invalid.Add(field, $"These {discovery.Kind} do not exist on the {connection.Type.ServerNoun}: {string.Join(", ", missing)}.");
        return ApiResults.Invalid(invalid);
    }

    private static JsonHttpResult<ConnectivityFailureBody> Unreachable(ConnectivityException failure) =>
        TypedResults.Json(new ConnectivityFailureBody(failure.Message, failure.Code), ApiJson.Context.ConnectivityFailureBody,
            statusCode: StatusCodes.Status502BadGateway);

    private static bool ValidRanges(string? list)
    {
        try
        {
            EgressPolicy.ParseList(list, "range");
            return true;
        }
        catch (StartupFailureException)
        {
            return false;
        }
    }

}

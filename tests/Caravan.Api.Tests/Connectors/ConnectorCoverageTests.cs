using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Connectors;
using Caravan.Api.Query;
using Caravan.Api.Tests.Infrastructure;
using Caravan.Api.Tests.Sources.Types;
using Microsoft.Extensions.DependencyInjection;

namespace Caravan.Api.Tests.Connectors;

/// <summary>
/// What every connection type gets from the shared code, derived from <see cref="SourceTypes.All"/>
/// so that a type added later is covered without touching this file: the rebind guard on each of
/// its destination fields, a driver and a query engine (or its reason to have none), its create
/// route, its console form and its OpenAPI schema.
/// </summary>
public sealed class ConnectorCoverageTests(CaravanApp app)
{
    public static TheoryData<string> TypeNames() => [.. SourceTypes.All.Select(t => t.Name)];

    /// <summary>Rows of (type, destination field): every field any type marks as saying where it connects.</summary>
    public static TheoryData<string, string> Destinations()
    {
        var rows = new TheoryData<string, string>();
        foreach (var type in SourceTypes.All)
        {
            foreach (var field in type.Fields.Where(f => f.IsDestination))
            {
                rows.Add(type.Name, field.Name);
            }
        }

        return rows;
    }

    [Fact]
    public void Every_type_that_connects_somewhere_names_where()
    {
        // A type whose host field had another name, or no destination mark, would be unguarded.
        Assert.All(SourceTypes.All.Where(t => t.Fields.Any(f => f.Kind == FieldKind.Host)), t => Assert.Contains(t.Fields, f => f.IsDestination));
        Assert.All(SourceTypes.All.SelectMany(t => t.Fields).Where(f => f.Kind == FieldKind.Host), f => Assert.True(f.IsDestination));
        Assert.Contains(SourceTypes.Get<Caravan.Api.Connectors.Snowflake.SnowflakeType>().Fields, f => f is { Name: "account", IsDestination: true });
    }

    [Theory]
    [MemberData(nameof(Destinations))]
    public async Task The_rebind_guard_covers_every_destination_field(string typeName, string field)
    {
        var org = await app.NewOrganizationAsync();
        var type = SourceTypes.Find(typeName)!;
        var id = await org.Http.CreateSourceAsync(TypeCatalog.Get(typeName).BodyFor().ToJsonString());
        var moved = type.FindField(field)!.Kind switch
        {
            FieldKind.Host => "moved.example.com",
            FieldKind.Url => "https://moved.example.com/mcp",
            _ => "moved-account",
        };

        var answer = await org.Http.PatchJsonAsync(TypeCatalog.UpdateUrl(id), new JsonObject { [field] = moved }.ToJsonString())
            .Expect(HttpStatusCode.BadRequest);

        var named = TypeCatalog.ErrorKeys(answer);
        Assert.NotEmpty(named);
        Assert.All(named, key => Assert.Contains($"Changing {field} requires sending", answer["errors"]![key]![0]!.GetValue<string>(), StringComparison.Ordinal));
        var config = await org.Http.GetAsync(new Uri($"/api/v1/sources/{id}/config/", UriKind.Relative)).Expect(HttpStatusCode.OK);
        Assert.NotEqual(moved, config["config"]![field]?.GetValue<string>());
    }

    [Theory]
    [MemberData(nameof(TypeNames))]
    public void Every_type_has_a_driver_and_a_query_engine_or_says_why_not(string typeName)
    {
        var type = SourceTypes.Find(typeName)!;
        var tester = app.Services.GetRequiredService<ConnectionTester>();
        var gateway = app.Services.GetRequiredService<QueryGateway>();

        Assert.True(tester.Serves(type), $"{typeName} has no driver for tests and discovery.");
        if (gateway.EngineFor(type) is { } engine)
        {
            Assert.Null(type.QueryUnsupported);
            Assert.Contains(type, engine.Types);
            Assert.NotNull(engine.Statements.Dialect);
        }
        else
        {
            Assert.False(string.IsNullOrWhiteSpace(type.QueryUnsupported), $"{typeName} has no query engine and does not say why.");
        }
    }

    [Theory]
    [MemberData(nameof(TypeNames))]
    public async Task Every_type_has_its_create_route_console_form_and_schema(string typeName)
    {
        var type = SourceTypes.Find(typeName)!;
        var org = await app.NewOrganizationAsync();
        var catalog = await org.Http.GetAsync(new Uri("/api/v1/source-types/", UriKind.Relative)).Expect(HttpStatusCode.OK);
        var document = await app.CreateClient().GetAsync(new Uri("/api/schema/", UriKind.Relative)).Expect(HttpStatusCode.OK);

        // The console's forms are generated from the source-types catalog: the type and every field are there.
        var entry = catalog["results"]!.AsArray().Single(t => t!["type"]!.GetValue<string>() == typeName)!;
        Assert.Equal(type.AddRoute, entry["add_route"]?.GetValue<string>());
        var listed = entry["fields"]!.AsArray().Select(f => f!["name"]!.GetValue<string>()).ToHashSet();
        Assert.All(type.Fields, f => Assert.Contains(f.Name, listed));

        if (type.AddRoute is { } slug)
        {
            var body = TypeCatalog.Get(typeName).BodyFor();
            body.Remove("type");
            var created = await org.Http.PostJsonAsync($"/api/v1/sources/add/{slug}/", body.ToJsonString()).Expect(HttpStatusCode.OK);
            Assert.True(created["id"]!.GetValue<long>() > 0);
            Assert.NotNull(document["paths"]![$"/api/v1/sources/add/{slug}/"]);
        }

        if (type.CreatedElsewhere is not null)
        {
            // Made of files, not fields: no fields, and the unified route refuses a body without them (FileRouteTests).
            Assert.Empty(type.Fields);
            var refused = await org.Http.PostJsonAsync("/api/v1/sources/", new JsonObject { ["type"] = typeName }.ToJsonString()).Expect(HttpStatusCode.BadRequest);
            Assert.NotNull(refused["errors"]);
            return;
        }

        var unified = await org.Http.PostJsonAsync("/api/v1/sources/", TypeCatalog.Get(typeName).BodyFor().ToJsonString()).Expect(HttpStatusCode.OK);
        Assert.True(unified["id"]!.GetValue<long>() > 0);
    }
}

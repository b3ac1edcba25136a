using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Hosting;
using Caravan.Api.Sources;
using Caravan.Api.Connectors;
using Microsoft.Extensions.Options;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>What a driver is handed, for tests of a driver on its own (without the routes or a database).</summary>
internal static class ConnectivityTestKit
{
    public static NetworkPath Network(EgressOptions? egress = null, ConnectivityOptions? connectivity = null)
    {
        var options = Options.Create(connectivity ?? new ConnectivityOptions());
        return new(new EgressPolicy(Options.Create(egress ?? new EgressOptions())), options,
            new SshTunnels(options, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<SshTunnels>.Instance));
    }

    /// <summary>What Caravan would hand a driver for this create body (the type's parsing and defaults applied).</summary>
    public static SourceConnection Connection(string typeName, JsonObject body) =>
        TryConnection(typeName, body) ?? throw new InvalidOperationException("The body is not valid for " + typeName);

    /// <summary>The same, or null when a create with this body would be refused.</summary>
    public static SourceConnection? TryConnection(string typeName, JsonObject body)
    {
        var type = SourceTypes.Find(typeName)!;
        var errors = new ValidationErrors();
        // As from a request: values backed by parsed JSON, which is what the type's readers expect;
        // type and account_name are the route's, not the type's fields.
        var change = SourceBodies.ReadFields(type, JsonNode.Parse(body.ToJsonString())!.AsObject(), ChangeMode.Create, errors, "type", "account_name");
        if (errors.IsEmpty)
        {
            type.Check(change, null, errors);
        }

        return errors.IsEmpty ? SourceConnections.Unsaved(type, change) : null;
    }
}

using System.Text.Json.Nodes;

namespace Caravan.Api.Connectors;

/// <summary>
/// A type whose sources are created from something else than fields (FILE: from files at URLs):
/// the unified create route hands it the body, and it answers.
/// </summary>
public interface ISourceImporter
{
    SourceType Type { get; }

    Task<IResult> CreateAsync(HttpContext context, JsonObject body, CancellationToken cancellationToken);
}

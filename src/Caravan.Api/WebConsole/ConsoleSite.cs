using System.Collections.Frozen;
using System.Security.Cryptography;
using Caravan.Api.Hosting;

namespace Caravan.Api.WebConsole;

/// <summary>
/// The web console at <c>/console/</c>: hand-written HTML, CSS and JavaScript modules embedded in
/// the assembly (no build step, nothing loaded from elsewhere), served with a strict
/// Content-Security-Policy. The console is a client of the public API and has no route of its own.
/// </summary>
public static class ConsoleSite
{
    public const string Path = "/console/";

    /// <summary>Only this server's own files; no inline script or style, no framing, no form posts elsewhere.</summary>
    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        + "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

    private const string ResourcePrefix = "console/";

    private static readonly FrozenDictionary<string, string> ContentTypes = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".svg"] = "image/svg+xml",
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    private static readonly Lazy<FrozenDictionary<string, Asset>> Assets = new(Load);

    /// <summary>The files of the console by their path under <c>/console/</c>.</summary>
    public static IReadOnlyDictionary<string, Asset> Files => Assets.Value;

    public static IEndpointRouteBuilder MapWebConsole(this IEndpointRouteBuilder routes)
    {
        // One route for /console, /console/ and its files (the router treats the trailing slash as
        // optional). Not an API route: /console redirects to /console/, as the page loads its
        // modules by relative URL.
        routes.MapGet("/console/{**file}", (string? file, HttpContext context) =>
        {
            if (!context.Request.Path.Value!.EndsWith('/') && string.IsNullOrEmpty(file))
            {
                SecureHeaders(context.Response);
                return Results.Redirect(Path);
            }

            return Serve(context, string.IsNullOrEmpty(file) ? "index.html" : file);
        }).ExcludeFromDescription();
        return routes;
    }

    public static void SecureHeaders(HttpResponse response) => SecurityHeaders.Apply(response, ContentSecurityPolicy);

    private static IResult Serve(HttpContext context, string file)
    {
        SecureHeaders(context.Response);
        if (!Files.TryGetValue(file, out var asset))
        {
            return Results.NotFound();
        }

        context.Response.Headers.ETag = asset.ETag;
        context.Response.Headers.CacheControl = "no-cache";
        if (context.Request.Headers.IfNoneMatch.Contains(asset.ETag))
        {
            return Results.StatusCode(StatusCodes.Status304NotModified);
        }

        return Results.Bytes(asset.Content, asset.ContentType);
    }

    private static FrozenDictionary<string, Asset> Load()
    {
        var assembly = typeof(ConsoleSite).Assembly;
        var files = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
        {
            var file = name[ResourcePrefix.Length..].Replace('\\', '/');
            if (!ContentTypes.TryGetValue(System.IO.Path.GetExtension(file), out var contentType))
            {
                continue;
            }

            using var stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var content = copy.ToArray();
            files[file] = new Asset(content, contentType, "\"" + Convert.ToHexStringLower(SHA256.HashData(content))[..16] + "\"");
        }

        return files.ToFrozenDictionary(StringComparer.Ordinal);
    }

    public sealed record Asset(byte[] Content, string ContentType, string ETag);
}

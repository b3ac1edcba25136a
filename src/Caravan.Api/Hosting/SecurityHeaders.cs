namespace Caravan.Api.Hosting;

/// <summary>
/// The headers of every page Caravan serves to a browser (the console, the API docs): a
/// Content-Security-Policy of the page's own, no framing, no MIME sniffing, no referrer, no
/// cross-origin opener or embedding, and none of the powerful browser features.
/// </summary>
public static class SecurityHeaders
{
    public static void Apply(HttpResponse response, string contentSecurityPolicy)
    {
        var headers = response.Headers;
        headers.ContentSecurityPolicy = contentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        headers["Cross-Origin-Opener-Policy"] = "same-origin";
        headers["Cross-Origin-Resource-Policy"] = "same-origin";
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()";
    }
}

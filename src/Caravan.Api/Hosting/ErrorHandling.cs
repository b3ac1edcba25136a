using System.Diagnostics;
using Microsoft.AspNetCore.Diagnostics;

namespace Caravan.Api.Hosting;

/// <summary>
/// The answers nobody's handler writes: unknown routes (404), wrong methods (405) and unexpected
/// failures (500 with a trace id and nothing else — never a stack trace or a secret).
/// </summary>
internal static class ErrorHandling
{
    public static IApplicationBuilder UseApiErrors(this IApplicationBuilder app)
    {
        app.UseExceptionHandler(errorApp => errorApp.Run(async context =>
        {
            var failure = context.Features.Get<IExceptionHandlerFeature>()?.Error;
            var traceId = Activity.Current?.TraceId.ToString() ?? context.TraceIdentifier;
            if (failure is BadHttpRequestException badRequest)
            {
                // Kestrel's own refusals (a body larger than the server allows, a broken chunk).
                context.Response.StatusCode = badRequest.StatusCode;
                var detail = badRequest.StatusCode == StatusCodes.Status413PayloadTooLarge ? "Request body too large." : "Bad request.";
                await context.Response.WriteAsJsonAsync(new DetailBody(detail), ApiJson.Context.DetailBody);
                return;
            }

            context.Response.StatusCode = StatusCodes.Status500InternalServerError;
            await context.Response.WriteAsJsonAsync(new ServerErrorBody("Internal server error.", traceId), ApiJson.Context.ServerErrorBody);
        }));

        app.UseStatusCodePages(async statusContext =>
        {
            var context = statusContext.HttpContext;
            var detail = context.Response.StatusCode switch
            {
                StatusCodes.Status404NotFound => ApiResults.NotFoundDetail,
                StatusCodes.Status405MethodNotAllowed => $"Method \"{context.Request.Method}\" not allowed.",
                StatusCodes.Status415UnsupportedMediaType => $"Unsupported media type \"{context.Request.ContentType}\" in request.",
                _ => null,
            };

            if (detail is not null)
            {
                await context.Response.WriteAsJsonAsync(new DetailBody(detail), ApiJson.Context.DetailBody);
            }
        });

        return app;
    }
}

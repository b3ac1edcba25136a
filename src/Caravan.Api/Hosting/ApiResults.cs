using Microsoft.AspNetCore.Http.HttpResults;

namespace Caravan.Api.Hosting;

/// <summary>The contract's fixed error answers (section 1), built in one place so every route says them alike.</summary>
internal static class ApiResults
{
    public const string NotFoundDetail = "Not found.";

    public static JsonHttpResult<DetailBody> NotFound() => Detail(StatusCodes.Status404NotFound, NotFoundDetail);

    public static JsonHttpResult<DetailBody> InvalidPage() => Detail(StatusCodes.Status404NotFound, "Invalid page.");

    public static JsonHttpResult<DetailBody> Detail(int status, string detail) =>
        TypedResults.Json(new DetailBody(detail), ApiJson.Context.DetailBody, statusCode: status);

    public static JsonHttpResult<ErrorBody> Invalid(ValidationErrors errors) =>
        TypedResults.Json(errors.ToBody(), ApiJson.Context.ErrorBody, statusCode: StatusCodes.Status400BadRequest);

    public static JsonHttpResult<StaleBody> Stale(string currentTag) =>
        TypedResults.Json(
            new StaleBody("The source was changed since you read it.", currentTag),
            ApiJson.Context.StaleBody,
            statusCode: StatusCodes.Status412PreconditionFailed);

    public static JsonHttpResult<ErrorBody> Malformed(string error) =>
        TypedResults.Json(
            new ErrorBody(error, new Dictionary<string, IReadOnlyList<string>>()),
            ApiJson.Context.ErrorBody,
            statusCode: StatusCodes.Status400BadRequest);
}

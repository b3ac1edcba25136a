using Caravan.Api.Hosting;
using Microsoft.OpenApi;

namespace Caravan.Api.Connectors.Files;

/// <summary>What the file routes declare to the OpenAPI document.</summary>
internal static class FilesOpenApi
{
    public static ApiSchema Created { get; } = new("FileSourceCreated", _ => Schema.Object(
        null, ("id", Schema.Integer("The id of the FILE data source."), true)));

    private static ApiSchema Upload { get; } = new("FileUploadRequest", _ => Schema.Object(
        "One or more files; each becomes a table named after it (a workbook one per sheet, a SQLite file one per table).",
        ("files", new OpenApiSchema
        {
            Type = JsonSchemaType.Array,
            Items = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary" },
            Description = "CSV, TSV, Parquet, JSON or NDJSON, Excel (.xlsx, .xls) or SQLite files, recognised by their content and name; "
                + "each at most Caravan__Files__MaxFileBytes (10 GiB), at most Caravan__Files__MaxFilesPerSource (100) per source.",
        }, true),
        ("account_name", Schema.Text("The source's name (new sources only); by default its first file's name."), false)));

    private static ApiSchema UrlImport { get; } = new("FileUrlImportRequest", _ => Schema.Object(
        "Files Caravan downloads itself: http or https only, never to loopback, private, CGNAT, link-local or metadata addresses "
            + "unless Caravan__Files__UrlAllow allows them, every redirect checked again, at most 5 redirects.",
        ("file_urls", Schema.ArrayOf(Schema.Object(
            null,
            ("url", Schema.Text("The file's http or https URL."), true),
            ("filename", Schema.Text("The file's name, which names its table and may say its format (sales.csv)."), true))), true),
        ("account_name", Schema.Text("The source's name (new sources only); by default its first file's name."), false)));

    /// <summary>A body of files (multipart) or of file URLs (JSON), and the refusals of either.</summary>
    public static TBuilder AcceptsFiles<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.Declares((operation, document) =>
        {
            operation.RequestBody = new OpenApiRequestBody
            {
                Required = true,
                Content = new Dictionary<string, OpenApiMediaType>
                {
                    ["multipart/form-data"] = new() { Schema = Upload.In(document) },
                    [ApiOperations.Json] = new() { Schema = UrlImport.In(document) },
                },
            };
            operation.Responses ??= [];
            operation.Responses["400"] = ApiOperations.JsonResponse(
                "A file or URL was refused (keyed `files`, `file_urls[i].url`, ...); nothing was kept.", ApiDocs.ValidationError, document);
            operation.Responses["413"] = ApiOperations.JsonResponse(
                "A JSON body (file_urls) over the JSON body limit; a multipart body has no limit of its own, its files are limited one by one.", ApiDocs.Detail, document);
            operation.Responses["415"] = ApiOperations.JsonResponse("The body is neither multipart/form-data nor application/json.", ApiDocs.Detail, document);
        });
}

using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Caravan.Api.Auth;
using Caravan.Api.Hosting;
using Caravan.Api.Sources;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace Caravan.Api.Connectors.Files;

/// <summary>
/// The routes that bring files in (contract 9.2): <c>POST /api/v1/uploads/upload/</c> (multipart
/// <c>files</c> and <c>account_name</c>, or JSON <c>file_urls</c>) creates a FILE source,
/// <c>POST /api/v1/sources/{id}/files/</c> adds files to one, and the unified create route hands
/// <c>{"type": "FILE", "file_urls": [...]}</c> here. A multipart body is read part by part as it
/// arrives, never buffered: not by ASP.NET's form reader, which spools files to temporary files in
/// plain text, and not in memory.
/// </summary>
public sealed class UploadsApi(FileImports imports, UrlImports urls) : ISourceImporter
{
    public const string FilesField = "files";
    public const string FileUrlsField = "file_urls";

    public SourceType Type => SourceTypes.Get<FileType>();

    public static IEndpointRouteBuilder MapUploads(IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1").RequireApiKey().WithTags("uploads");
        group.MapPost("/uploads/upload/", (HttpContext context, UploadsApi api, CancellationToken ct) => api.UploadAsync(context, null, ct))
            .WithName("uploads_upload_create")
            .WithSummary("Upload files or import files from URLs and create a FILE data source")
            .AcceptsFiles()
            .Answers(StatusCodes.Status200OK, "Every file is stored; the source was created and its files convert in the background (see `config.files`).", FilesOpenApi.Created);
        group.MapPost("/sources/{id}/files/", (string id, HttpContext context, UploadsApi api, CancellationToken ct) =>
                RouteIds.Parse(id) is { } sourceId ? api.UploadAsync(context, sourceId, ct) : Task.FromResult<IResult>(ApiResults.NotFound()))
            .WithName("sources_files_create")
            .WithSummary("Add files to a FILE data source (extension)")
            .TakesSourceId("No such FILE source in your organization.")
            .AcceptsFiles()
            .Answers(StatusCodes.Status200OK, "Every file is stored; a file named like one the source holds replaces it once converted.", FilesOpenApi.Created);
        return routes;
    }

    /// <summary>The unified create route's <c>{"type": "FILE", "file_urls": [...]}</c>.</summary>
    public async Task<IResult> CreateAsync(HttpContext context, JsonObject body, CancellationToken cancellationToken)
    {
        var errors = new ValidationErrors();
        var accountName = SourceBodies.ReadAccountName(body, errors, required: false);
        var wanted = ReadUrls(body, errors, SourceBodies.TypeField);
        if (!errors.IsEmpty)
        {
            return ApiResults.Invalid(errors);
        }

        await using var batch = imports.ForNewSource(context.Caller());
        return await ImportUrlsAsync(batch, wanted, accountName, cancellationToken) ?? await CommitAsync(batch, accountName, cancellationToken);
    }

    private async Task<IResult> UploadAsync(HttpContext context, long? sourceId, CancellationToken cancellationToken)
    {
        var request = context.Request;
        var mediaType = MediaTypeHeaderValue.TryParse(request.ContentType, out var parsed) ? parsed : null;
        var multipart = mediaType?.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase) == true;
        if (!multipart && mediaType?.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase) != true)
        {
            return ApiResults.Detail(StatusCodes.Status415UnsupportedMediaType,
                "Send files as multipart/form-data (parts named files, and account_name), or URLs as application/json (file_urls).");
        }

        await using var batch = sourceId is null ? imports.ForNewSource(context.Caller()) : await imports.ForSourceAsync(context.Caller(), sourceId.Value, cancellationToken);
        if (batch is null)
        {
            return ApiResults.NotFound();
        }

        if (!multipart)
        {
            var read = await JsonBody.ReadObjectAsync(request, cancellationToken);
            if (read.Error is not null)
            {
                return read.Error;
            }

            var errors = new ValidationErrors();
            var accountName = SourceBodies.ReadAccountName(read.Body!, errors, required: false);
            if (sourceId is not null && accountName is not null)
            {
                errors.Add(SourceBodies.AccountName, "Rename a source with PATCH /api/v1/sources/{id}/, not with its files.");
            }

            var wanted = ReadUrls(read.Body!, errors);
            if (!errors.IsEmpty)
            {
                return ApiResults.Invalid(errors);
            }

            return await ImportUrlsAsync(batch, wanted, accountName, cancellationToken) ?? await CommitAsync(batch, accountName, cancellationToken);
        }

        // The body is as large as its files: the limits are the files' own, counted as they stream.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = null;
        }

        var boundary = HeaderUtilities.RemoveQuotes(mediaType!.Boundary).Value;
        if (string.IsNullOrEmpty(boundary) || boundary.Length > 200)
        {
            return ApiResults.Malformed("The multipart body has no valid boundary.");
        }

        var (name, error) = await ReadPartsAsync(new MultipartReader(boundary, request.Body) { BodyLengthLimit = null }, batch, sourceId is not null, cancellationToken);
        if (error is not null)
        {
            // The rest of a refused body is not read (it may be gigabytes): the connection closes after the answer.
            context.Response.Headers.Connection = "close";
            return error;
        }

        return await CommitAsync(batch, name, cancellationToken);
    }

    /// <summary>Reads the parts in order, storing each file as it streams; stops at the first refused part.</summary>
    private static async Task<(string? AccountName, IResult? Error)> ReadPartsAsync(
        MultipartReader reader, FileImports.FileBatch batch, bool existing, CancellationToken cancellationToken)
    {
        string? accountName = null;
        var errors = batch.Errors;
        MultipartSection? section;
        try
        {
            while ((section = await reader.ReadNextSectionAsync(cancellationToken)) is not null)
            {
                var disposition = section.GetContentDispositionHeader();
                var field = HeaderUtilities.RemoveQuotes(disposition?.Name ?? default).Value ?? string.Empty;
                var fileName = disposition is null ? null
                    : HeaderUtilities.RemoveQuotes(disposition.FileNameStar.HasValue ? disposition.FileNameStar : disposition.FileName).Value;
                if (field is FilesField or "files[]" or "file" && disposition!.IsFileDisposition())
                {
                    if (!await batch.AddAsync(fileName, section.Body, FilesField, cancellationToken))
                    {
                        return (null, ApiResults.Invalid(errors));
                    }
                }
                else if (field == SourceBodies.AccountName && !existing && fileName is null)
                {
                    var text = await ReadTextAsync(section.Body, 4 * Field.MaxTextLength, cancellationToken);
                    accountName = text is null ? null : SourceBodies.ReadAccountName(new JsonObject { [SourceBodies.AccountName] = text }, errors, required: false);
                    if (text is null)
                    {
                        errors.Add(SourceBodies.AccountName, $"Ensure this field has no more than {Field.MaxTextLength} characters.");
                    }
                }
                else
                {
                    errors.Add(field.Length == 0 ? ValidationErrors.NonField : SourceBodies.FieldKey(field),
                        existing ? "Not a valid field here: send parts named files." : "Not a valid field for an upload: send parts named files, and account_name.");
                }

                if (!errors.IsEmpty)
                {
                    return (null, ApiResults.Invalid(errors));
                }
            }
        }
        catch (Exception exception) when (exception is InvalidDataException or IOException and not FileTooLargeException)
        {
            return (null, ApiResults.Malformed("The multipart body is malformed or ended early."));
        }

        if (batch.Files.Count == 0)
        {
            errors.Add(FilesField, "Send at least one file (parts named files).");
            return (null, ApiResults.Invalid(errors));
        }

        return (accountName, null);
    }

    /// <summary>A form field's text, or null when it is longer than <paramref name="limit"/> bytes.</summary>
    private static async Task<string?> ReadTextAsync(Stream body, int limit, CancellationToken cancellationToken)
    {
        var buffer = new byte[limit + 1];
        var length = await body.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken);
        return length > limit ? null : Encoding.UTF8.GetString(buffer, 0, length);
    }

    /// <summary>The <c>file_urls</c> of a JSON body, checked for syntax; every problem is reported.</summary>
    private static List<(string Url, string FileName)> ReadUrls(JsonObject body, ValidationErrors errors, params string[] alsoAllowed)
    {
        foreach (var (name, _) in body)
        {
            if (name != FileUrlsField && name != SourceBodies.AccountName && !alsoAllowed.Contains(name, StringComparer.Ordinal))
            {
                errors.Add(SourceBodies.FieldKey(name), "Not a valid field for FILE sources.");
            }
        }

        var wanted = new List<(string, string)>();
        if (!body.TryGetPropertyValue(FileUrlsField, out var node) || node is null)
        {
            errors.Add(FileUrlsField, node is null && body.ContainsKey(FileUrlsField) ? "This field may not be null." : "This field is required.");
            return wanted;
        }

        if (node is not JsonArray items)
        {
            errors.Add(FileUrlsField, "Expected a list of items but got type \"" + node.GetValueKind().ToString().ToLowerInvariant() + "\".");
            return wanted;
        }

        if (items.Count == 0)
        {
            errors.Add(FileUrlsField, "This list may not be empty.");
        }

        for (var i = 0; i < items.Count; i++)
        {
            var key = $"{FileUrlsField}[{i}]";
            if (items[i] is not JsonObject item)
            {
                errors.Add(key, "Expected an object with url and filename.");
                continue;
            }

            string? Text(string field)
            {
                if (!item.TryGetPropertyValue(field, out var value) || value is null)
                {
                    errors.Add($"{key}.{field}", "This field is required.");
                    return null;
                }

                if (value.GetValueKind() != JsonValueKind.String)
                {
                    errors.Add($"{key}.{field}", "Not a valid string.");
                    return null;
                }

                return value.GetValue<string>();
            }

            foreach (var (name, _) in item)
            {
                if (name is not "url" and not "filename")
                {
                    errors.Add($"{key}.{SourceBodies.FieldKey(name)}", "Not a valid field of a file URL: send url and filename.");
                }
            }

            var url = Text("url");
            var fileName = Text("filename");
            if (url is not null && UrlImports.CheckSyntax(url) is { } bad)
            {
                errors.Add($"{key}.url", bad);
                url = null;
            }

            if (fileName is not null && FileNames.Clean(fileName) is null)
            {
                errors.Add($"{key}.filename", "Give the file a name, such as sales.csv (at most 255 characters, no control characters).");
                fileName = null;
            }

            if (url is not null && fileName is not null)
            {
                wanted.Add((url, fileName));
            }
        }

        return wanted;
    }

    /// <summary>Fetches each URL and stores it as it arrives; the refusal of the first that fails, or null when all are stored.</summary>
    private async Task<IResult?> ImportUrlsAsync(
        FileImports.FileBatch batch, List<(string Url, string FileName)> wanted, string? accountName, CancellationToken cancellationToken)
    {
        _ = accountName;
        for (var i = 0; i < wanted.Count; i++)
        {
            var key = $"{FileUrlsField}[{i}].url";
            try
            {
                await using var download = await urls.OpenAsync(wanted[i].Url, cancellationToken);
                if (!await batch.AddAsync(wanted[i].FileName, download.Content, key, cancellationToken))
                {
                    return ApiResults.Invalid(batch.Errors);
                }
            }
            catch (UrlImportException refused)
            {
                batch.Errors.Add(key, refused.Message);
                return ApiResults.Invalid(batch.Errors);
            }
        }

        return null;
    }

    private static async Task<IResult> CommitAsync(FileImports.FileBatch batch, string? accountName, CancellationToken cancellationToken) =>
        await batch.CommitAsync(accountName, cancellationToken) is { } row
            ? TypedResults.Json(new CreatedResponse(row.Id, null), ApiJson.Context.CreatedResponse)
            : ApiResults.NotFound();
}

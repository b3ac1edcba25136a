namespace Caravan.Api.Connectors.Files;

/// <summary>
/// FILE: data files uploaded to Caravan or imported from URLs (contract 9.2), each converted to a
/// table. It has no configuration fields: it is created by the upload route (or the unified route
/// with <c>file_urls</c>), its files are added with <c>POST …/files/</c>, and it is ready once every
/// file is, which the conversion jobs record, not a field.
/// </summary>
public sealed class FileType : SourceType
{
    public override string Name => "FILE";

    public override string DisplayName => "File Upload";

    /// <summary>No <c>/add/file/</c> route: a FILE source is made of files, sent to <c>/api/v1/uploads/upload/</c>.</summary>
    public override string? AddRoute => null;

    public override int Order => 110;

    public override IReadOnlyList<Field> Fields => [];

    public override string SchemaKind => "tables";

    public override bool ReadinessFromFields => false;

    public override bool QueriesWaitForReadiness => false;

    public override string CreatedElsewhere =>
        "FILE sources are made of files: upload them to POST /api/v1/uploads/upload/, or send file_urls to POST /api/v1/sources/.";
}

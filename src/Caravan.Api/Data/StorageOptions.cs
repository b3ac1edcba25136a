namespace Caravan.Api.Data;

public enum StorageProvider
{
    Sqlite,
    Postgres,
}

public sealed class StorageOptions
{
    public const string Section = "Caravan:Storage";

    public StorageProvider Provider { get; set; } = StorageProvider.Sqlite;

    /// <summary>Filled from <c>ConnectionStrings:Caravan</c>.</summary>
    public string ConnectionString { get; set; } = string.Empty;
}

namespace Caravan.Api.Connectors.MotherDuck;

/// <summary>
/// Whether DuckDB sources may name a local file instead of a MotherDuck database
/// (<c>Caravan__Egress__AllowLocalFiles</c>, in the egress section because a file is the other way
/// out of the process that a source could take).
/// </summary>
public sealed class LocalFileOptions
{
    public const string Section = "Caravan:Egress";

    public bool AllowLocalFiles { get; set; }
}

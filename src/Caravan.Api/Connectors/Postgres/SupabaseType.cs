namespace Caravan.Api.Connectors.Postgres;

/// <summary>Supabase is PostgreSQL with another name; it is created through the unified route only.</summary>
public sealed class SupabaseType : PostgresType
{
    public override string Name => "SUPABASE";

    public override string DisplayName => "Supabase";

    public override string? AddRoute => null;

    public override int Order => 110;
}

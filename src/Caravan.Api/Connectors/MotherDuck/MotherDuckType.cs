namespace Caravan.Api.Connectors.MotherDuck;

public sealed class MotherDuckType : SourceType
{
    public override string Name => "MOTHERDUCK";

    public override string DisplayName => "MotherDuck";

    public override int Order => 50;

    public override IReadOnlyList<Field> Fields => field ??=
    [
        Field.Text("database_name", "MotherDuck database name").AsRequired(),
        Field.Secret("token", "MotherDuck access token").AsRequired(),
    ];
}

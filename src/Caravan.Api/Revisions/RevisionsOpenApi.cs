using Caravan.Api.Hosting;
using Microsoft.OpenApi;

namespace Caravan.Api.Revisions;

/// <summary>The bodies of the revisions route in the OpenAPI document (contract section 8).</summary>
internal static class RevisionsOpenApi
{
    public static ApiSchema Revision { get; } = new("Revision", _ => Schema.Object(
        "One change of a data source. Secret values never appear: a secret's change is only `set`, `changed` or `cleared`.",
        ("number", Schema.Integer("1 for the create, then one more for each change of this source."), true),
        ("at", Schema.Time("When the change was made; RFC 3339, UTC."), true),
        ("actor", Schema.Object(
            "Who made the change.",
            ("org", Schema.Text("The organization."), true),
            ("key_id", Schema.Nullable(Schema.Text("The id of the API key used; null for an operator on the command line (`secrets rotate`).")), true)), true),
        ("action", Schema.Enum(RevisionActions.All, "`create`, `update` (update-config, PUT, PATCH), `delete`, or `rotate` (secrets re-encrypted under a new master key; no value changed)."), true),
        ("changes", new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Description = "The fields that changed, by name: `{\"old\", \"new\"}` for a non-secret field (null when absent), "
                + "or `set`, `changed` or `cleared` for a secret. Empty for `rotate`.",
            AdditionalProperties = new OpenApiSchema
            {
                OneOf =
                [
                    Schema.Object(
                        "A non-secret field.",
                        ("old", new OpenApiSchema { Description = "The value before; null when the field was not set." }, true),
                        ("new", new OpenApiSchema { Description = "The value after; null when the field is no longer set." }, true)),
                    Schema.Enum([RevisionChanges.Set, RevisionChanges.Changed, RevisionChanges.Cleared], "A secret field."),
                ],
            },
        }, true)));

    public static ApiSchema PaginatedRevisionList { get; } =
        Schema.Page("PaginatedRevisionList", "The number of the data source's revisions.", Revision);
}

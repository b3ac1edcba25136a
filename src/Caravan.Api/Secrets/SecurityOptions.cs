namespace Caravan.Api.Secrets;

/// <summary>Security switches (section <c>Caravan:Security</c>).</summary>
public sealed class SecurityOptions
{
    public const string Section = "Caravan:Security";

    /// <summary>
    /// When true, update-config may move a source to another host (or Snowflake account) while
    /// keeping its stored secrets, as camelAI allows. Off by default: the rebind guard then asks
    /// for the secrets again, so nobody who can edit a source can send its password elsewhere.
    /// </summary>
    public bool AllowSecretRebind { get; set; }
}

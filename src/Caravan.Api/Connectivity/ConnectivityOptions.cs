namespace Caravan.Api.Connectivity;

public sealed class ConnectivityOptions
{
    public const string Section = "Caravan:Connectivity";

    /// <summary>Overall deadline of one connection test or discovery, in seconds (1–60).</summary>
    public int TestTimeoutSeconds { get; set; } = 10;

    /// <summary>Longest wait for DNS or a TCP connection, in seconds (never more than the overall deadline).</summary>
    public int ConnectTimeoutSeconds { get; set; } = 5;

    /// <summary>How long a source's SSH session stays open with no connection through it and no request for it, in seconds.</summary>
    public int SshIdleSeconds { get; set; } = 300;

    /// <summary>
    /// Base URLs that replace a REST service's public endpoint, by type (<c>SNOWFLAKE</c>,
    /// <c>BIGQUERY</c>, <c>DATABRICKS</c>): for private endpoints, proxies and local stand-ins.
    /// </summary>
    public Dictionary<string, string> Endpoints { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}

public sealed class EgressOptions
{
    public const string Section = "Caravan:Egress";

    /// <summary>Comma-separated CIDR ranges to refuse, on top of the built-in ones.</summary>
    public string? Deny { get; set; }

    /// <summary>Comma-separated CIDR ranges to allow; an allowed range wins over every denied one.</summary>
    public string? Allow { get; set; }
}

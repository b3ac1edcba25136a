namespace Caravan.Api.Hosting;

/// <summary>A reason Caravan cannot start that the operator can fix; its message says how.</summary>
public sealed class StartupFailureException(string message) : Exception(message);

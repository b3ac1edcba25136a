using Caravan.Api.Connectivity;
namespace Caravan.Api.Connectors;

/// <summary>Helpers every driver uses to turn its library's exceptions into failure codes.</summary>
public static class DriverFailures
{
    /// <summary>The first exception of type <typeparamref name="T"/> in the chain of inner exceptions.</summary>
    public static T? Find<T>(Exception? exception)
        where T : Exception
    {
        for (; exception is not null; exception = exception.InnerException)
        {
            if (exception is T found)
            {
                return found;
            }
        }

        return null;
    }

    /// <summary>The failure of a TLS handshake whose certificate a source's <c>tls</c> settings refused, or null for any other.</summary>
    public static ConnectivityException? TlsRefusal(Exception exception) =>
        Find<TlsVerificationException>(exception) is { } refused
            ? new(FailureCodes.TlsVerifyFailed, "The server's certificate was refused: " + refused.Message, exception, step: TestSteps.Tls)
            : null;

    /// <summary>A source created without its host (the legacy route allows that) cannot be reached yet.</summary>
    public static ConnectivityException Unconfigured() =>
        new(FailureCodes.DriverError, "The source has no host name yet; complete its configuration with update-config.");
}

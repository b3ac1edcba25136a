using Caravan.Api.Query;

namespace Caravan.Api.Connectors.Snowflake;

/// <summary>
/// The logged-in Snowflake session of one source version, shared by its queries: Snowflake runs
/// several statements of one session at once, so a query costs its describe and its run, not a
/// login and a logout as well. Kept in <see cref="QueryPools"/> like a connection pool, so an
/// update-config, a rotation or a delete retires it (and logs it out) at once. A session Snowflake
/// says has expired is replaced by a new login.
/// </summary>
public sealed class SnowflakeSessions(HttpClient client, Uri service, SourceConnection connection) : IAsyncDisposable
{
    private readonly SemaphoreSlim _login = new(1, 1);
    private SnowflakeSession? _current;

    /// <summary>
    /// The current session, logged in on first use; a new one when <paramref name="expired"/> is
    /// the current one (Snowflake said it expired). Concurrent callers share one login.
    /// </summary>
    public async Task<SnowflakeSession> SessionAsync(SnowflakeSession? expired, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _current) is { } current && current != expired)
        {
            return current;
        }

        await _login.WaitAsync(cancellationToken);
        try
        {
            if (_current is { } other && other != expired)
            {
                return other;
            }

            var fresh = new SnowflakeSession(client, service, connection);
            await fresh.LoginAsync(cancellationToken);
            Volatile.Write(ref _current, fresh);
            return fresh;
        }
        finally
        {
            _login.Release();
        }
    }

    /// <summary>Whether a query-request's answer says the session's token is no longer valid (log in again).</summary>
    public static bool Expired(RestAnswer answer) =>
        answer.Status == System.Net.HttpStatusCode.Unauthorized || answer.Field("code") is "390112" or "390114";

    /// <summary>Logs the session out (best effort, briefly): the pool was retired and no query uses it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _current, null) is { } session)
        {
            await session.CloseAsync(CancellationToken.None);
        }

        _login.Dispose();
    }
}

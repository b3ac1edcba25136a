using System.Data.Common;
using Caravan.Api.Data;
using Microsoft.Data.Sqlite;

namespace Caravan.Api.Tests.Hosting;

/// <summary>
/// The statements a long-lived SQLite connection keeps compiled (the read sessions, the group
/// commit's connection): the same command for the same SQL, with no parameters left from its last
/// use, and a bound on how many it keeps.
/// </summary>
public sealed class SqliteSessionTests
{
    [Fact]
    public async Task A_registered_connection_hands_out_one_compiled_command_per_sql_with_its_parameters_cleared()
    {
        using var session = new SqliteSession(await OpenAsync()).Register();
        var connection = session.Connection;

        var first = connection.Command("SELECT @a + 1").With("@a", 41);
        Assert.Equal(42L, await first.ExecuteScalarAsync(TestContext.Current.CancellationToken));

        var again = connection.Command("SELECT @a + 1");
        Assert.Same(first, again);
        Assert.Empty(again.Parameters);
        Assert.Equal(8L, await again.With("@a", 7).ExecuteScalarAsync(TestContext.Current.CancellationToken));

        // In a transaction, the same command runs in it.
        await using var transaction = await connection.BeginTransactionAsync(TestContext.Current.CancellationToken);
        var inTransaction = connection.Command("SELECT @a + 1", transaction);
        Assert.Same(first, inTransaction);
        Assert.Same(transaction, inTransaction.Transaction);
    }

    [Fact]
    public async Task Past_its_limit_a_session_compiles_sql_for_each_use_and_counts_it()
    {
        using var session = new SqliteSession(await OpenAsync()).Register();
        var kept = Enumerable.Range(0, 256).Select(i => session.Command($"SELECT {i}")).ToList();
        Assert.Equal(0, session.Uncached);

        var past = session.Command("SELECT 'one more'");
        Assert.NotSame(past, session.Command("SELECT 'one more'"));
        Assert.Equal(2, session.Uncached);
        Assert.Equal("one more", await past.ExecuteScalarAsync(TestContext.Current.CancellationToken));

        // What it kept stays kept.
        Assert.Same(kept[0], session.Command("SELECT 0"));
        Assert.Same(kept[255], session.Command("SELECT 255"));
    }

    [Fact]
    public async Task Other_connections_and_a_disposed_session_get_new_commands()
    {
        await using var plain = await OpenAsync();
        Assert.NotSame(plain.Command("SELECT 1"), plain.Command("SELECT 1"));

        var session = new SqliteSession(await OpenAsync()).Register();
        var connection = session.Connection;
        Assert.Same(session, SqliteSession.Of(connection));
        session.Dispose();
        Assert.Null(SqliteSession.Of(connection));
    }

    [Fact]
    public async Task A_read_session_past_its_uncached_limit_is_replaced_when_returned()
    {
        using var sessions = new SqliteReadSessions(_ => OpenAsync(), limit: 1);
        DbCommand kept;
        await using (var lease = await sessions.RentAsync(TestContext.Current.CancellationToken))
        {
            kept = lease.Command("SELECT 0");
        }

        // Returned within its limit: the same session, the same compiled command.
        await using (var lease = await sessions.RentAsync(TestContext.Current.CancellationToken))
        {
            Assert.Same(kept, lease.Command("SELECT 0"));
            for (var i = 1; i <= 255 + SqliteSession.MaxUncached + 1; i++)
            {
                lease.Command($"SELECT {i}");
            }
        }

        // Past it: a new connection with nothing compiled.
        await using (var lease = await sessions.RentAsync(TestContext.Current.CancellationToken))
        {
            var fresh = lease.Command("SELECT 0");
            Assert.NotSame(kept, fresh);
            Assert.Equal(0L, await fresh.ExecuteScalarAsync(TestContext.Current.CancellationToken));
        }
    }

    private static async Task<SqliteConnection> OpenAsync()
    {
        var connection = new SqliteConnection("Data Source=:memory:");
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        return connection;
    }
}

using System.Data.Common;
using System.Reflection;
using System.Text.RegularExpressions;

namespace Caravan.Api.Data;

/// <summary>
/// Versioned schema migrations: numbered SQL files per provider, embedded in the program and
/// applied in order, each in its own transaction, recorded in <c>schema_migrations</c>.
/// </summary>
public sealed partial class Migrator(Database database, ILogger<Migrator> logger)
{
    public static IReadOnlyList<Migration> For(StorageProvider provider)
    {
        var prefix = $"migrations/{provider}/";
        var assembly = typeof(Migrator).Assembly;
        return [.. assembly.GetManifestResourceNames()
            .Where(name => name.StartsWith(prefix, StringComparison.Ordinal) && name.EndsWith(".sql", StringComparison.Ordinal))
            .Select(name => Parse(assembly, name, name[prefix.Length..^4]))
            .OrderBy(m => m.Version)];
    }

    public async Task<IReadOnlyList<Migration>> PendingAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var applied = await AppliedAsync(connection, cancellationToken);
        return [.. For(database.Provider).Where(m => !applied.Contains(m.Version))];
    }

    public async Task<int> MigrateAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.Command(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)")
            .ExecuteNonQueryAsync(cancellationToken);

        var count = 0;
        foreach (var migration in For(database.Provider))
        {
            await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
            if (database.Provider == StorageProvider.Postgres)
            {
                // Replicas or operators migrating at once take turns; the loser finds the work done.
                await connection.Command("SELECT pg_advisory_xact_lock(7290443)", transaction).ExecuteNonQueryAsync(cancellationToken);
            }

            var already = await connection.Command("SELECT COUNT(*) FROM schema_migrations WHERE version = @v", transaction)
                .With("@v", migration.Version).ExecuteScalarAsync(cancellationToken);
            if (Convert.ToInt64(already, System.Globalization.CultureInfo.InvariantCulture) > 0)
            {
                continue;
            }

            await connection.Command(migration.Sql, transaction).ExecuteNonQueryAsync(cancellationToken);
            await connection.Command("INSERT INTO schema_migrations (version, name, applied_at) VALUES (@v, @n, @t)", transaction)
                .With("@v", migration.Version).With("@n", migration.Name).With("@t", DbCommandExtensions.Now())
                .ExecuteNonQueryAsync(cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            logger.LogInformation("Applied migration {Version} {Name}", migration.Version, migration.Name);
            count++;
        }

        if (database.Provider == StorageProvider.Sqlite)
        {
            // WAL lets readers run while one writer commits; the setting is kept in the file.
            await connection.Command("PRAGMA journal_mode = WAL").ExecuteNonQueryAsync(cancellationToken);
        }

        return count;
    }

    private static async Task<HashSet<long>> AppliedAsync(DbConnection connection, CancellationToken cancellationToken)
    {
        var versions = new HashSet<long>();
        try
        {
            await using var reader = await connection.Command("SELECT version FROM schema_migrations").ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                versions.Add(reader.GetInt64(0));
            }
        }
        catch (DbException)
        {
            // No migrations table yet: nothing applied.
        }

        return versions;
    }

    private static Migration Parse(Assembly assembly, string resource, string fileName)
    {
        var match = FileNamePattern().Match(fileName);
        if (!match.Success)
        {
            throw new InvalidOperationException($"Migration file '{fileName}.sql' must be named like 0001_description.sql.");
        }

        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(stream);
        return new Migration(long.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), match.Groups[2].Value, reader.ReadToEnd());
    }

    [GeneratedRegex(@"^(\d+)_(\w+)$")]
    private static partial Regex FileNamePattern();
}

public sealed record Migration(long Version, string Name, string Sql);

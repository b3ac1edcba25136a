using System.Reflection;
using System.Text.RegularExpressions;
using Caravan.Api.Connectors;

namespace Caravan.Api.Tests.Connectors;

/// <summary>
/// What differs by connection type lives in its family's folder under <c>src/Caravan.Api/Connectors/</c>:
/// outside it, only the composition file (<c>Program.cs</c>) may name a concrete type, whether by its
/// class (<c>PostgresType</c>, <c>MySqlQueryEngine</c>, ...) or by its name as a string
/// (<c>"POSTGRES"</c>). Comments and prose inside longer strings (tool descriptions) do not count.
/// </summary>
public sealed partial class ConnectorBoundaryTests
{
    private static readonly string SourceFolder = FindSourceFolder();

    [Fact]
    public void Outside_the_connectors_folder_no_file_names_a_concrete_type()
    {
        var offences = new List<string>();
        foreach (var path in Directory.EnumerateFiles(SourceFolder, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(SourceFolder, path).Replace('\\', '/');
            if (relative.StartsWith("Connectors/", StringComparison.Ordinal) || relative.StartsWith("obj/", StringComparison.Ordinal)
                || relative.StartsWith("bin/", StringComparison.Ordinal) || relative == "Program.cs")
            {
                continue;
            }

            offences.AddRange(Names(File.ReadAllText(path)).Select(name => $"{relative}: {name}"));
        }

        Assert.Empty(offences);
    }

    [Fact]
    public void The_scan_finds_a_class_name_and_a_type_name_in_code_but_not_in_comments_or_prose()
    {
        // The check above can only pass for the right reason if it sees what it looks for.
        const string code = """
            // PostgresType in a comment, "POSTGRES" too
            /* MySqlDriver */
            var engine = new ClickHouseQueryEngine();
            if (type.Name == "MySQL") { }
            var prose = "PostgreSQL and MySQL sources";
            var escaped = "a \"quote\" and POSTGRES";
            """;

        Assert.Equal(["ClickHouseQueryEngine", "\"MySQL\""], Names(code));
    }

    [Fact]
    public void Every_family_class_is_in_the_connectors_folder()
    {
        // The names the scan looks for come from the assembly: every class of a family namespace.
        Assert.Contains("PostgresType", FamilyClasses);
        Assert.Contains("SnowflakeQueryEngine", FamilyClasses);
        foreach (var type in SourceTypes.All)
        {
            var file = Directory.EnumerateFiles(Path.Combine(SourceFolder, "Connectors"), type.GetType().Name + ".cs", SearchOption.AllDirectories).SingleOrDefault();
            Assert.True(file is not null, $"{type.GetType().Name} is not in a folder under Connectors/.");
        }
    }

    private static readonly HashSet<string> FamilyClasses = typeof(SourceType).Assembly.GetTypes()
        .Where(t => t.Namespace?.StartsWith(typeof(SourceType).Namespace + ".", StringComparison.Ordinal) == true)
        .Where(t => !t.IsNested && t.GetCustomAttribute<System.Runtime.CompilerServices.CompilerGeneratedAttribute>() is null && !t.Name.Contains('<', StringComparison.Ordinal))
        .Select(t => t.IsGenericType ? t.Name[..t.Name.IndexOf('`', StringComparison.Ordinal)] : t.Name)
        .ToHashSet(StringComparer.Ordinal);

    private static readonly HashSet<string> TypeNames = SourceTypes.All.Select(t => t.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>The family classes named as words, and the string literals that are exactly a type's name, in order.</summary>
    private static List<string> Names(string text)
    {
        var found = new List<string>();
        foreach (Match token in Tokens().Matches(text))
        {
            if (token.Groups["string"].Success)
            {
                if (TypeNames.Contains(token.Groups["string"].Value))
                {
                    found.Add(token.Value);
                }
            }
            else if (token.Groups["word"].Success && FamilyClasses.Contains(token.Value))
            {
                found.Add(token.Value);
            }
        }

        return found;
    }

    /// <summary>Comments (skipped), raw and regular string literals (the latter's content captured), and words.</summary>
    [GeneratedRegex("""//[^\n]*|/\*.*?\*/|"{3,}.*?"{3,}|@"(?:[^"]|"")*"|\$?"(?<string>(?:[^"\\\n]|\\.)*)"|'(?:[^'\\\n]|\\.)*'|(?<word>[A-Za-z_][A-Za-z0-9_]*)""", RegexOptions.Singleline)]
    private static partial Regex Tokens();

    private static string FindSourceFolder()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "src", "Caravan.Api");
            if (File.Exists(Path.Combine(candidate, "Caravan.Api.csproj")))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("The tests run from a checkout: src/Caravan.Api was not found above " + AppContext.BaseDirectory);
    }
}

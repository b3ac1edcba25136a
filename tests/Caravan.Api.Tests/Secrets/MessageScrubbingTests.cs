using System.Text;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Query;
using Caravan.Api.Connectors;
using Caravan.Api.Tests.Connectivity;
using Caravan.Api.Tests.Sources.Types;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Secrets;

/// <summary>
/// Messages are masked first and cut after (issue #12, item 1). For every secret field of every
/// type, stored the way a client sends it, secrets of 8 to 64 characters, and every place a
/// message limit can cut: no run of six or more of a secret's characters survives any message
/// path's shortening, whether the message holds the secret as sent, URL- or JSON-escaped, or inside
/// the base64 of an <c>Authorization: Basic</c> header.
/// </summary>
public sealed class MessageScrubbingTests
{
    /// <summary>Characters a secret is drawn from: what every way of storing one can carry (no quotes, braces, ';' or white space).</summary>
    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'()*+,-./:<=>?@[]^_|~éü中";

    /// <summary>What stands around a secret in a message: in no secret, so it cannot look like a fragment.</summary>
    private const char Filler = '·';

    private const int Length = SecretScrubber.FragmentLength;

    private const string AsValue = "as the value";
    private const string PemKey = "a PEM key";

    /// <summary>Every message path, the limit it cuts at, and what it makes of a message holding a secret.</summary>
    private static readonly (string Name, int Limit, Func<SourceConnection, string, string> Shorten)[] Paths =
    [
        ("test step", TestRun.MessageLimit, (connection, message) => Step(connection, new ConnectivityException(FailureCodes.AuthFailed, message))),
        ("test step, unexpected exception", TestRun.MessageLimit, (connection, message) => Step(connection, new InvalidOperationException(message))),
        ("discovery 502", TestRun.MessageLimit, Discover),
        ("query 422", QueryRun.MessageLimit, (connection, message) => Query(connection).Failed(QueryCodes.QueryFailed, message).Failure.Message),
        ("query 502", QueryRun.MessageLimit, (connection, message) => Query(connection).Scrub(message)),
    ];

    /// <summary>Every secret of every type: its secret fields, and the secrets it stores under other names.</summary>
    public static IEnumerable<(SourceType Type, string Field)> SecretFields() =>
        SourceTypes.All.SelectMany(type => type.Fields.Where(f => f.IsSecret).Select(f => f.Name).Concat(type.StoredSecrets)
            .Distinct(StringComparer.Ordinal)
            .Select(field => (type, field)));

    [Fact]
    public void Every_secret_field_of_every_type_can_be_stored_with_a_secret_in_it()
    {
        var sample = new Sample("Zq8!x~Ue5é+p/Wd%k3", 100);
        var unplaced = SecretFields().Where(f => !Place(f.Type, f.Field, sample).Any()).Select(f => $"{f.Type.Name}.{f.Field}").ToList();

        Assert.True(unplaced.Count == 0, "No way known to store a secret in " + string.Join(", ", unplaced) + ": add one to Candidates.");
        Assert.Contains(SecretFields(), f => f.Field == ServerOrConnectionStringType.SecretOptions);
    }

    [Property(Arbitrary = [typeof(Samples)], MaxTest = 8)]
    public void No_fragment_of_a_secret_survives_any_message_path_at_any_cut(Sample sample)
    {
        foreach (var (type, field) in SecretFields())
        {
            var placements = Place(type, field, sample).ToList();
            Assert.True(placements.Count > 0, $"{sample} cannot be stored in {type.Name}.{field}.");
            foreach (var placement in placements)
            {
                foreach (var (form, message, secretPart) in Echoes(placement.Secret))
                {
                    var fragments = Fragments(placement.Secret).Concat(Fragments(secretPart)).Distinct(StringComparer.Ordinal).ToArray();
                    foreach (var (path, limit, shorten) in Paths)
                    {
                        // Every cut from before the echo to just after it: the cut falls on each of its characters.
                        for (var before = Math.Max(0, limit - message.Length - 2); before <= limit + 2; before++)
                        {
                            var output = shorten(placement.Connection, new string(Filler, before) + message + new string(Filler, 40));
                            var shown = output.AsSpan().Trim([Filler, '…']).ToString();
                            var leaked = fragments.FirstOrDefault(fragment => shown.Contains(fragment, StringComparison.Ordinal));
                            Assert.True(leaked is null,
                                $"{path} leaks \"{leaked}\" of {type.Name}.{field} ({placement.How}, {form}, cut at {limit - before} of the echo): {shown}");
                            Assert.True(output.Length <= limit + 1, $"{path} answered {output.Length} characters, more than its limit {limit}.");
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public void A_cut_never_halves_a_mask_and_keeps_the_text_before_it()
    {
        var scrubber = new SecretScrubber(["correct-horse-battery"]);
        var text = "Login refused for key correct-horse-battery; try again.";
        var at = text.IndexOf("correct", StringComparison.Ordinal);

        for (var limit = at; limit <= at + SecretScrubber.Mask.Length + 1; limit++)
        {
            var output = scrubber.Scrub(text, limit);
            Assert.True(output == "Login refused for key …" || output.StartsWith("Login refused for key [redacted]", StringComparison.Ordinal), output);
        }

        Assert.Equal("Login refused for key [redacted]; try again.", scrubber.Scrub(text));
        Assert.Equal("Login refused for key [redacted]; try again.", scrubber.Scrub(text, 100));
    }

    [Theory]
    [InlineData("X-ClickHouse-Key: correct-ho…", "cut short by the server")]
    [InlineData("key=correct-hors", "a prefix")]
    [InlineData("battery was wrong", "a suffix")]
    [InlineData("ect-horse-bat", "the middle")]
    public void A_fragment_of_six_or_more_characters_is_masked_wherever_it_is(string text, string what)
    {
        var output = new SecretScrubber(["correct-horse-battery"]).Scrub(text);

        Assert.True(output.Contains(SecretScrubber.Mask, StringComparison.Ordinal), $"{what}: {output}");
        Assert.DoesNotContain(Fragments("correct-horse-battery"), f => output.Contains(f, StringComparison.Ordinal));
    }

    [Fact]
    public void The_forms_a_server_echoes_are_masked()
    {
        const string secret = "p@ss w\"rd/+é\\x<y>";
        var bytes = Encoding.UTF8.GetByteCount(secret);
        var escaped = Uri.EscapeDataString(secret);
        var basic = Convert.ToBase64String(Encoding.UTF8.GetBytes("analyst:" + secret));
        var embedded = Convert.ToBase64String(Encoding.UTF8.GetBytes("a:" + secret + ":b"));
        var urlSafe = Convert.ToBase64String(Encoding.UTF8.GetBytes(secret)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var echoes = new (string Echo, string SecretPart)[]
        {
            (secret, secret),
            (escaped, escaped),
            (escaped.ToLowerInvariant(), escaped.ToLowerInvariant()),
            (escaped.Replace("%20", "+", StringComparison.Ordinal), escaped.Replace("%20", "+", StringComparison.Ordinal)),
            (JsonText.Quote(secret)[1..^1], JsonText.Quote(secret)[1..^1]),
            (System.Net.WebUtility.HtmlEncode(secret), System.Net.WebUtility.HtmlEncode(secret)),
            ("Authorization: Basic " + basic, Base64Inner(basic, 8, bytes)),
            ("Authorization: Basic " + embedded, Base64Inner(embedded, 2, bytes)),
            ("token=" + urlSafe, Base64Inner(urlSafe, 0, bytes)),
        };

        var scrubber = new SecretScrubber([secret]);
        foreach (var (echo, secretPart) in echoes)
        {
            var output = scrubber.Scrub("The server said: " + echo + " (end)");
            Assert.StartsWith("The server said: ", output, StringComparison.Ordinal);
            Assert.EndsWith(" (end)", output, StringComparison.Ordinal);
            var leaked = Fragments(secretPart).FirstOrDefault(f => output.Contains(f, StringComparison.Ordinal));
            Assert.True(leaked is null, $"\"{leaked}\" of {echo} survives: {output}");
        }
    }

    [Fact]
    public void Short_secrets_are_masked_whole_and_the_shortest_not_at_all()
    {
        var scrubber = new SecretScrubber(["ab", "xyz12", "xyz1"]);

        Assert.Equal("user ab, key [redacted], [redacted]9 and xyz", scrubber.Scrub("user ab, key xyz12, xyz19 and xyz"));
    }

    [Fact]
    public void Only_the_secret_parts_of_a_document_are_masked()
    {
        var pem = TypeCatalog.ServiceAccountPrivateKey;
        var key = TypeCatalog.ServiceAccountKey();
        key["private_key_id"] = "kid-Zq8x7Ue5pWd3";
        var bigQuery = ConnectivityTestKit.Connection("BIGQUERY", new JsonObject { ["service_account_key"] = key });
        var mongo = ConnectivityTestKit.Connection("MONGODB", new JsonObject
        {
            ["connection_string"] = "mongodb://app:Mo%2Fngo-Pw-99@m1.example.com:27017/orders?tlsCertificateKeyFilePassword=cert-Pw-77&replicaSet=rs0",
        });
        var postgres = ConnectivityTestKit.Connection("POSTGRES", new JsonObject
        {
            ["connection_string"] = "postgresql://report:Pg-Pw-1234@pg.example.com/sales?sslmode=require&sslpassword=ssl-Pw-5678",
        });

        var quoted = bigQuery.Scrubber.Scrub($"key {key.ToJsonString()} refused");
        Assert.Contains("-----BEGIN PRIVATE KEY-----", quoted, StringComparison.Ordinal);
        Assert.Contains("reader@caravan-tests.iam.gserviceaccount.com", quoted, StringComparison.Ordinal);
        Assert.Contains("\"private_key_id\":\"[redacted]\"", quoted, StringComparison.Ordinal);
        Assert.DoesNotContain(pem.Split('\n')[5], quoted, StringComparison.Ordinal);
        Assert.DoesNotContain(pem.Split('\n')[5][10..20], bigQuery.Scrubber.Scrub(pem.Split('\n')[5][10..20]), StringComparison.Ordinal);

        Assert.Equal(
            "mongodb://app:[redacted]@m1.example.com:27017/orders?tlsCertificateKeyFilePassword=[redacted]&replicaSet=rs0 and [redacted]",
            mongo.Scrubber.Scrub("mongodb://app:Mo%2Fngo-Pw-99@m1.example.com:27017/orders?tlsCertificateKeyFilePassword=cert-Pw-77&replicaSet=rs0 and Mo/ngo-Pw-99"));
        Assert.Equal(
            "postgresql://report:[redacted]@pg.example.com/sales?sslmode=require&sslpassword=[redacted] ({\"sslpassword\":\"[redacted]\"})",
            postgres.Scrubber.Scrub("postgresql://report:Pg-Pw-1234@pg.example.com/sales?sslmode=require&sslpassword=ssl-Pw-5678 ({\"sslpassword\":\"ssl-Pw-5678\"})"));
    }

    /// <summary>A generated secret, and where a window of the test's PEM key starts (for fields that hold a key).</summary>
    public sealed record Sample(string Secret, int PemOffset)
    {
        public override string ToString() => $"secret \"{Secret}\" ({Secret.Length} characters), PEM window at {PemOffset}";
    }

    /// <summary>Secrets of 8 to 64 characters of <see cref="Alphabet"/>.</summary>
    public static class Samples
    {
        public static Arbitrary<Sample> Secrets() =>
            Gen.Choose(8, 64)
                .SelectMany(length => Gen.ArrayOf(Gen.Elements(Alphabet.ToCharArray()), length))
                .Select(chars => new string(chars))
                .Where(secret => !Field.IsPlaceholder(secret) && !Fragments(secret).Any(f => (SecretScrubber.Mask + "…").Contains(f, StringComparison.Ordinal)))
                .SelectMany(secret => Gen.Choose(0, 1500).Select(offset => new Sample(secret, offset)))
                .ToArbitrary();
    }

    /// <summary>A secret stored as a client would send it: the connection Caravan makes of it, and the secret text to look for.</summary>
    private sealed record Placement(string How, SourceConnection Connection, string Secret);

    /// <summary>
    /// Every known way of storing <paramref name="sample"/> in <paramref name="field"/> that a create
    /// accepts and that really stores it there (a field that is no field of its own, such as the
    /// secret options, is reached through the connection string).
    /// </summary>
    private static IEnumerable<Placement> Place(SourceType type, string field, Sample sample)
    {
        var setter = type.FindField(field) ?? type.FindField(ServerOrConnectionStringType.ConnectionStringField);
        if (setter is null)
        {
            yield break;
        }

        var asValue = false;
        foreach (var (how, value, secret) in Candidates(setter, sample))
        {
            if (how == PemKey && asValue)
            {
                // A field that takes any text takes a PEM key too: nothing new to learn there.
                continue;
            }

            var body = TypeCatalog.Get(type.Name).BodyFor(setter.Name);
            body[setter.Name] = value.DeepClone();
            var connection = ConnectivityTestKit.TryConnection(type.Name, body);
            var stored = type.StoredSecrets.Contains(field) ? connection?.Secret(field) : connection?.Secrets.Values.FirstOrDefault(v => Holds(v, secret));
            if (connection is not null && stored is not null && Holds(stored, secret))
            {
                asValue |= how == AsValue;
                yield return new Placement(how, connection, secret);
            }
        }
    }

    /// <summary>
    /// The ways a secret is sent in a field: as the value itself or as a PEM key (a window of its
    /// body) in any, in each kind of connection string in a connection string, and in a
    /// service-account key in one.
    /// </summary>
    private static IEnumerable<(string How, JsonNode Value, string Secret)> Candidates(Field field, Sample sample)
    {
        var secret = sample.Secret;
        var escaped = Uri.EscapeDataString(secret);
        var pem = TypeCatalog.ServiceAccountPrivateKey;
        var body = Field.PemBody(pem);
        var window = body.Substring(sample.PemOffset % (body.Length - secret.Length), secret.Length);

        yield return (AsValue, secret, secret);
        yield return (PemKey, pem, window);
        if (field.Name != ServerOrConnectionStringType.ConnectionStringField)
        {
            foreach (var key in field.Kind == FieldKind.SecretDocument ? ServiceAccountKeys(sample.Secret, window) : [])
            {
                yield return key;
            }

            yield break;
        }

        yield return ("password of a postgres URI", $"postgresql://u:{escaped}@db.example.com:5432/d", secret);
        yield return ("sslpassword of a postgres URI", $"postgresql://u:pw-1@db.example.com/d?sslpassword={escaped}", secret);
        yield return ("password of a mongodb URI", $"mongodb://u:{escaped}@m.example.com:27017/d", secret);
        yield return ("tlsCertificateKeyFilePassword of a mongodb URI", $"mongodb://u:pw-1@m.example.com/d?tlsCertificateKeyFilePassword={escaped}", secret);
        yield return ("Password of an ADO.NET string", $"Server=sql.example.com;Database=d;User ID=u;Password=\"{secret}\"", secret);
        yield return ("a secret option of an ADO.NET string", $"Server=sql.example.com;Database=d;User ID=u;Password=pw-1;ClientSecret=\"{secret}\"", secret);
    }

    private static IEnumerable<(string How, JsonNode Value, string Secret)> ServiceAccountKeys(string secret, string window)
    {
        var withId = TypeCatalog.ServiceAccountKey();
        withId["private_key_id"] = secret;
        yield return ("private_key_id of a service-account key", withId, secret);
        yield return ("part of a service-account key's private_key", TypeCatalog.ServiceAccountKey(), window);
    }

    /// <summary>True when a stored value holds the secret: as it is, URL-encoded (a connection string kept whole), or inside the JSON a type keeps (options, a key).</summary>
    private static bool Holds(string stored, string secret) =>
        stored.Contains(secret, StringComparison.Ordinal)
        || stored.Contains(Uri.EscapeDataString(secret), StringComparison.Ordinal)
        || Field.PemBody(stored).Contains(secret, StringComparison.Ordinal)
        || (stored.StartsWith('{') && JsonNode.Parse(stored) is JsonObject document
            && document.Any(p => p.Value is JsonValue v && v.TryGetValue<string>(out var text) && Holds(text, secret)));

    /// <summary>A secret as a server may put it in a message, and the part of that text that comes from the secret alone.</summary>
    private static IEnumerable<(string Form, string Message, string SecretPart)> Echoes(string secret)
    {
        yield return ("as sent", secret, secret);
        yield return ("URL-encoded", Uri.EscapeDataString(secret), Uri.EscapeDataString(secret));
        var json = JsonText.Quote(secret)[1..^1];
        yield return ("JSON-escaped", json, json);

        // "user:" is five bytes: the secret starts two bytes into a base64 group, so its own characters start at the eighth.
        var basic = Convert.ToBase64String(Encoding.UTF8.GetBytes("user:" + secret));
        yield return ("in an Authorization: Basic header", "Authorization: Basic " + basic, Base64Inner(basic, 5, Encoding.UTF8.GetByteCount(secret)));
    }

    /// <summary>The characters of a base64 text that come from the secret's bytes alone, which start <paramref name="before"/> bytes in.</summary>
    private static string Base64Inner(string encoded, int before, int secretBytes) =>
        encoded[(((8 * before) + 5) / 6)..Math.Min(encoded.Length, 8 * (before + secretBytes) / 6)];

    private static IEnumerable<string> Fragments(string text) =>
        Enumerable.Range(0, Math.Max(0, text.Length - Length + 1)).Select(i => text.Substring(i, Length));

    private static string Step(SourceConnection connection, Exception failure)
    {
        using var run = new TestRun(connection.Scrubber, TimeSpan.FromSeconds(10), CancellationToken.None);
        var step = run.StepAsync("authenticate", _ => Task.FromException(failure));
        Assert.True(step.IsCompleted);
        return run.Report().Steps.Single().Message!;
    }

    private static string Discover(SourceConnection connection, string message)
    {
        var tester = new ConnectionTester([new FailingDriver(connection.Type, message)], Options.Create(new ConnectivityOptions()), NullLogger<ConnectionTester>.Instance);
        var discovery = tester.DiscoverAsync(connection, CancellationToken.None);
        Assert.True(discovery.IsFaulted);
        return Assert.IsType<ConnectivityException>(discovery.Exception!.InnerException).Message;
    }

    private static QueryRun Query(SourceConnection connection) =>
        new(connection, 1, 1, 1, "SELECT 1", new QueryRequest("SELECT 1", 10, 1000, null), new QueryOptions(), null!,
            new ResultMemory(Options.Create(new QueryOptions())), connection.Scrubber, CancellationToken.None);

    /// <summary>A driver whose discovery fails with the given message, as a database's answer would.</summary>
    private sealed class FailingDriver(SourceType type, string message) : IDriver
    {
        public IReadOnlyCollection<SourceType> Types => [type];

        public Task TestAsync(TestRun run, SourceConnection connection) => Task.CompletedTask;

        public Task<IReadOnlyList<string>> ListSchemasAsync(SourceConnection connection, CancellationToken cancellationToken) =>
            Task.FromException<IReadOnlyList<string>>(new ConnectivityException(FailureCodes.AuthFailed, message));
    }
}

using System.Net;
using System.Text.Json.Nodes;
using Caravan.Api.Connectivity;
using Caravan.Api.Tests.Infrastructure;

namespace Caravan.Api.Tests.Connectivity;

/// <summary>
/// The rebind guard on the paths that connect: a stored password never travels to a host it was
/// not stored for. A listener on 127.0.0.1 plays the attacker's new host and records every
/// connection; the refused requests must leave it untouched, while the same request with the guard
/// switched off reaches it (so the listener would have seen a connection).
/// </summary>
public sealed class RebindConnectivityTests(CaravanApp app)
{
    private static readonly TimeSpan Settle = TimeSpan.FromMilliseconds(300);

    // The stored host is refused by the egress policy, so testing the stored configuration connects nowhere.
    private static readonly string Stored = Pg.Body("169.254.169.254", 5432, password: "stored-pass");

    [Fact]
    public async Task Verify_with_a_changed_host_and_no_password_is_refused_before_any_connection()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Stored);
        var before = await app.StoredSourceAsync(id);
        using var attacker = LoopbackListener.HangingUp();

        var answer = await org.Http.PatchJsonAsync($"{SourceRoutes.Url(id, "update-config")}?verify=true",
            Move(attacker.Port).ToJsonString()).Expect(HttpStatusCode.BadRequest);
        await Task.Delay(Settle);

        Assert.Equal("""{"password":["Changing hostname requires sending password again."]}""", answer["errors"]!.Compact());
        Assert.Empty(attacker.Arrivals);
        Assert.Equal(before, await app.StoredSourceAsync(id));
    }

    [Fact]
    public async Task The_stored_test_route_ignores_a_body_and_never_connects_to_a_host_it_names()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Stored);
        using var attacker = LoopbackListener.HangingUp();

        var report = await org.Http.PostJsonAsync(SourceRoutes.Url(id, "test"), Move(attacker.Port).ToJsonString()).Expect(HttpStatusCode.OK);
        await Task.Delay(Settle);

        // It tested the stored host (refused by the egress policy), not the one in the body.
        Reports.AssertFailedAt(report, "egress", FailureCodes.EgressDenied);
        Assert.Empty(attacker.Arrivals);
    }

    [Fact]
    public async Task The_unsaved_test_route_has_no_stored_secret_to_send()
    {
        var org = await app.NewOrganizationAsync();
        await org.Http.CreateSourceAsync(Stored);
        using var attacker = LoopbackListener.HangingUp();
        var body = JsonNode.Parse(Pg.Body("127.0.0.1", attacker.Port))!.AsObject();
        body.Remove("password");

        var answer = await org.Http.PostJsonAsync("/api/v1/sources/test/", body.ToJsonString()).Expect(HttpStatusCode.BadRequest);
        await Task.Delay(Settle);

        Assert.Equal("""{"password":["This field is required."]}""", answer["errors"]!.Compact());
        Assert.Empty(attacker.Arrivals);
    }

    [Fact]
    public async Task With_the_password_resent_verify_does_connect_to_the_new_host()
    {
        var org = await app.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Stored);
        using var listener = LoopbackListener.HangingUp();
        var move = Move(listener.Port);
        move["password"] = "fresh-pass";

        await org.Http.PatchJsonAsync($"{SourceRoutes.Url(id, "update-config")}?verify=true", move.ToJsonString()).Expect(HttpStatusCode.BadGateway);

        Assert.NotEmpty(listener.Arrivals);
    }

    [Fact]
    public async Task With_the_guard_off_the_stored_password_goes_to_the_new_host_which_is_what_the_guard_prevents()
    {
        await using var permissive = new OwnCaravan(new Dictionary<string, string?> { ["Caravan:Security:AllowSecretRebind"] = "true" });
        var org = await permissive.NewOrganizationAsync();
        var id = await org.Http.CreateSourceAsync(Stored);
        using var attacker = LoopbackListener.HangingUp();

        await org.Http.PatchJsonAsync($"{SourceRoutes.Url(id, "update-config")}?verify=true", Move(attacker.Port).ToJsonString())
            .Expect(HttpStatusCode.BadGateway);

        Assert.NotEmpty(attacker.Arrivals);
    }

    /// <summary>An update-config body that moves the source to the listener, without its password.</summary>
    private static JsonObject Move(int port) => new()
    {
        ["hostname"] = "127.0.0.1",
        ["port"] = port,
        ["selected_schemas"] = new JsonArray("public"),
    };
}

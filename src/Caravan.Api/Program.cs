using Caravan.Api.Auth;
using Caravan.Api.Connectivity;
using Caravan.Api.Connectors;
using Caravan.Api.Connectors.Files;
using Caravan.Api.Cli;
using Caravan.Api.Data;
using Caravan.Api.Hosting;
using Caravan.Api.Mcp;
using Caravan.Api.Query;
using Caravan.Api.Revisions;
using Caravan.Api.Secrets;
using Caravan.Api.Sources;
using Caravan.Api.Tokens;
using Caravan.Api.WebConsole;
using Microsoft.Extensions.Options;

// Before anything is written: what Caravan and its native libraries create is the owner's only.
OwnerOnlyFiles.RestrictUmask();
var builder = WebApplication.CreateBuilder(args);

// ASP.NET Core logs every request at Information (a dozen console lines per request, which more
// than halved GET throughput in bench/); keep its own logs to warnings unless configured otherwise.
// Inserted first, so appsettings, the environment and the command line still override it.
builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource
{
    InitialData = [new("Logging:LogLevel:Microsoft.AspNetCore", "Warning")],
});
builder.Logging.AddBatchedConsole();

// Kestrel and HttpClient log request content (a malformed header, with the API key in it) at
// Debug and Trace: those categories are held above that whatever the configuration says.
builder.Logging.AddFrameworkFloors();
var isCommand = CommandLine.IsCommand(args);
if (isCommand)
{
    CommandLine.QuietLogging(builder.Logging);
}
else if (string.IsNullOrEmpty(builder.Configuration["urls"]))
{
    builder.WebHost.UseUrls("http://127.0.0.1:8080");
}

builder.WebHost.ConfigureKestrel(kestrel => kestrel.AddServerHeader = false);
builder.Services.AddApiJson();
builder.Services.AddLimits();
builder.Services.AddStorage(builder.Configuration);
builder.Services.AddSecrets(builder.Configuration);
builder.Services.AddApiKeyAuthentication();
builder.Services.AddRateLimits();
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSources();
builder.Services.AddRevisions();
builder.Services.AddConnectors();
builder.Services.AddConnectivity();
builder.Services.AddQuery();
builder.Services.AddMcp();
builder.Services.AddApiDocs();
builder.Services.AddTokens();

var app = builder.Build();
try
{
    // Resolve the key ring now, so a bad master key setting stops the start with its message.
    app.Services.GetRequiredService<SecretProtector>();
    if (isCommand)
    {
        return await CommandLine.RunAsync(app.Services, args, Console.Out, Console.Error);
    }

    app.UseApiErrors();
    app.MapHealth();
    app.MapApiDocs();
    app.MapSources();
    app.MapRevisions();
    app.MapConnectivity();
    app.MapQuery();
    app.MapMcpServer();
    app.MapTokens();
    app.MapSourceTypes();
    app.MapFiles();
    app.MapWebConsole();
    await app.RunAsync();
    return 0;
}
catch (Exception exception) when (exception is StartupFailureException or SecretsConfigurationException or OptionsValidationException)
{
    await Console.Error.WriteLineAsync($"Caravan could not start: {exception.Message}");
    return 1;
}

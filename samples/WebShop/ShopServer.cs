using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace SelfPlay.Samples.WebShop;

/// <summary>
/// The WebShop-like site, served by ASP.NET Core (Kestrel) on 127.0.0.1 with an ephemeral port: a search page,
/// result lists, item pages with size options, and a buy endpoint that confirms the purchased item's attributes.
/// Pages are small HTML documents; links and buttons are the clickable elements.
/// </summary>
public sealed class ShopServer : IDisposable
{
    readonly WebApplication _app;

    public Uri Address { get; }
    public Catalogue Catalogue { get; }

    ShopServer(WebApplication app, Uri address, Catalogue catalogue) => (_app, Address, Catalogue) = (app, address, catalogue);

    /// <summary>Starts the shop on 127.0.0.1:<paramref name="port"/> (0: an ephemeral port).</summary>
    public static ShopServer Start(Catalogue catalogue, int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        app.MapGet("/", () => Html("<form action=\"/search\"><input name=\"q\"><button>search</button></form>"));
        app.MapGet("/search", (string? q) =>
        {
            var found = catalogue.Search(q ?? "");
            var items = string.Concat(found.Select(p => $"<li><a href=\"/item/{p.Id}\">{p.Id}</a> <span class=\"title\">{Enc(p.Title)}</span> <span class=\"price\">{p.Price}</span></li>"));
            return Html($"<ul class=\"results\">{items}</ul><a href=\"/\">back</a>");
        });
        app.MapGet("/item/{id}", (string id, string? size) =>
        {
            if (catalogue.Find(id) is not { } p) return Results.NotFound();
            var options = string.Concat(p.Sizes.Select(s => s == size ? $"<b class=\"selected\">{s}</b>" : $"<button name=\"size\" value=\"{s}\">{s}</button>"));
            return Html($"<h1 id=\"{p.Id}\">{Enc(p.Title)}</h1><span class=\"price\">{p.Price}</span><div class=\"options\">{options}</div>" +
                        "<form method=\"post\" action=\"/buy\"><button name=\"buy\">buy</button></form><a href=\"/\">back</a>");
        });
        app.MapPost("/buy", (string item, string? size) =>
        {
            if (catalogue.Find(item) is not { } p) return Results.NotFound();
            if (size is not null && !p.Sizes.Contains(size)) return Results.BadRequest();
            return Html($"<h1>thank you</h1><dl><dt>category</dt><dd>{p.Category}</dd><dt>material</dt><dd>{p.Material}</dd>" +
                        $"<dt>color</dt><dd>{p.Color}</dd><dt>size</dt><dd>{size ?? "none"}</dd><dt>price</dt><dd>{p.Price}</dd></dl>");
        });
        app.StartAsync().GetAwaiter().GetResult();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new ShopServer(app, new Uri(address), catalogue);
    }

    static IResult Html(string body) => Results.Content($"<html><body>{body}</body></html>", "text/html");

    static string Enc(string text) => WebUtility.HtmlEncode(text);

    public void Dispose() => _app.DisposeAsync().AsTask().GetAwaiter().GetResult();
}

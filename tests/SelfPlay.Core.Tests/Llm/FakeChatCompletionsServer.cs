using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace SelfPlay.Core.Tests.Llm;

/// <summary>
/// A fake of an OpenAI-compatible chat completions server (no real LLM service is reachable here): a real HTTP server
/// on 127.0.0.1 that answers POST /v1/chat/completions with what <see cref="Reply"/> says, and records every request.
/// </summary>
public sealed class FakeChatCompletionsServer : IAsyncDisposable
{
    readonly WebApplication _app;

    /// <summary>(attempt number from 1, request body) → (HTTP status, reply contents or a raw body, optional Retry-After seconds).</summary>
    public Func<int, JsonNode, FakeReply> Reply { get; set; } = (_, _) => FakeReply.Ok("Final Judgement: Yes");
    public ConcurrentQueue<(JsonNode Body, string? Authorization)> Requests { get; } = new();
    public string Endpoint { get; }

    public FakeChatCompletionsServer()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        _app = builder.Build();
        _app.MapPost("/v1/chat/completions", async (HttpContext http) =>
        {
            var body = (await JsonNode.ParseAsync(http.Request.Body))!;
            Requests.Enqueue((body, http.Request.Headers.Authorization.FirstOrDefault()));
            var reply = Reply(Requests.Count, body);
            if (reply.DelaySeconds > 0) await Task.Delay(TimeSpan.FromSeconds(reply.DelaySeconds));
            http.Response.StatusCode = reply.Status;
            if (reply.RetryAfterSeconds is { } after) http.Response.Headers.RetryAfter = after.ToString();
            var n = body["n"]?.GetValue<int>() ?? 1;
            var text = reply.RawBody ?? new JsonObject
            {
                ["id"] = "fake", ["object"] = "chat.completion", ["model"] = body["model"]?.GetValue<string>(),
                ["choices"] = new JsonArray(Enumerable.Range(0, Math.Min(n, reply.MaxChoices)).Select(i => (JsonNode)new JsonObject
                {
                    ["index"] = i, ["finish_reason"] = "stop",
                    ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = reply.Contents[i % reply.Contents.Length] },
                }).ToArray()),
            }.ToJsonString();
            await http.Response.WriteAsync(text);
        });
        _app.StartAsync().GetAwaiter().GetResult();
        Endpoint = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/v1";
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}

public sealed record FakeReply(int Status, string[] Contents, string? RawBody = null, int? RetryAfterSeconds = null, double DelaySeconds = 0,
    int MaxChoices = int.MaxValue)
{
    public static FakeReply Ok(params string[] contents) => new(200, contents);
    public static FakeReply Error(int status, string message, int? retryAfter = null) =>
        new(status, [], new JsonObject { ["error"] = new JsonObject { ["message"] = message } }.ToJsonString(), retryAfter);
}

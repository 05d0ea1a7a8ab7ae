using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SelfPlay.Core.Config;

namespace SelfPlay.Core.Llm;

/// <summary>A call to an OpenAI-compatible server that failed for good (after retries, or a refusal such as HTTP 401); one line.</summary>
public sealed class LlmException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The HTTP status of a refusal (4xx other than 429), or null.</summary>
    public int? Status { get; init; }
}

public sealed record ChatMessage(string Role, string Content)
{
    public static ChatMessage System(string content) => new("system", content);
    public static ChatMessage User(string content) => new("user", content);
}

/// <summary>
/// A client of an OpenAI-compatible server (chat completions for judges and critics, completions and vLLM's adapter
/// calls for the openai inference backend, all under {endpoint}/): the model, the key
/// from the environment variable llm.api-key-env (sent over https, or over plain http to loopback only), a time-out per
/// attempt, retries with exponential backoff (honouring Retry-After) on connection failures, time-outs, HTTP 429 and
/// 5xx, and answers of at most <see cref="MaxResponseBytes"/>. Other HTTP errors fail at once.
/// </summary>
public sealed class OpenAiClient : IDisposable
{
    readonly HttpClient _http;
    readonly LlmConfig _config;
    readonly TimeSpan _backoff;
    readonly string? _key;

    /// <param name="backoff">first retry delay, doubled per attempt (tests shorten it).</param>
    /// <param name="needsModel">false for the inference backend, which names a model per request</param>
    public OpenAiClient(LlmConfig config, TimeSpan? backoff = null, HttpMessageHandler? handler = null, bool needsModel = true)
    {
        if (string.IsNullOrWhiteSpace(config.Endpoint) || needsModel && string.IsNullOrWhiteSpace(config.Model))
            throw new ArgumentException(needsModel ? "an LLM judge or critic needs llm.endpoint and llm.model" : "inference.backend = openai needs inference.endpoint");
        if (!Uri.TryCreate(config.Endpoint.TrimEnd('/') + "/", UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
            throw new ArgumentException($"llm.endpoint must be an http(s) URL, got '{config.Endpoint}'");
        _config = config;
        _backoff = backoff ?? TimeSpan.FromSeconds(1);
        _key = config.ApiKeyEnv.Length > 0 ? Environment.GetEnvironmentVariable(config.ApiKeyEnv) : null;
        if (!string.IsNullOrEmpty(_key) && endpoint.Scheme == "http" && !endpoint.IsLoopback)
            throw new ArgumentException($"llm.endpoint {config.Endpoint} is plain http: the API key of {config.ApiKeyEnv} is sent only over https or to a loopback address");
        _http = new HttpClient(handler ?? new SocketsHttpHandler()) { BaseAddress = endpoint, Timeout = Timeout.InfiniteTimeSpan };
    }

    public string Model => _config.Model;

    /// <summary>The largest answer read (a chat completion is kilobytes; a server that sends more is refused).</summary>
    public const int MaxResponseBytes = 8 * 1024 * 1024;

    /// <summary>The first choice's message content.</summary>
    public async Task<string> CompleteAsync(IReadOnlyList<ChatMessage> messages, double temperature = 0, int maxTokens = 256,
        long? seed = null, CancellationToken cancellationToken = default) =>
        (await CompleteManyAsync(messages, 1, temperature, maxTokens, seed, cancellationToken))[0];

    /// <summary>n choices (asked as "n"; servers that return fewer are asked again until there are n).</summary>
    public async Task<IReadOnlyList<string>> CompleteManyAsync(IReadOnlyList<ChatMessage> messages, int n, double temperature = 0.7,
        int maxTokens = 256, long? seed = null, CancellationToken cancellationToken = default)
    {
        var answers = new List<string>();
        for (var round = 0; answers.Count < n; round++)
        {
            if (round >= n) throw new LlmException($"chat completions: asked for {n} choices, got {answers.Count}");
            var body = new JsonObject
            {
                ["model"] = _config.Model,
                ["messages"] = new JsonArray(messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = m.Content }).ToArray()),
                ["temperature"] = temperature,
                ["max_tokens"] = maxTokens,
                ["n"] = n - answers.Count,
            };
            if (seed is { } s) body["seed"] = s + round;
            answers.AddRange(ParseChoices(await PostTextAsync("chat/completions", body.ToJsonString(), cancellationToken)));
        }
        return answers.Take(n).ToList();
    }

    /// <summary>POST {endpoint}/{path} with a JSON body, retried as the class says; the answer as JSON.</summary>
    public async Task<JsonNode> PostAsync(string path, JsonObject body, CancellationToken cancellationToken = default)
    {
        var text = await PostTextAsync(path, body.ToJsonString(), cancellationToken);
        try { return JsonNode.Parse(text) ?? throw new LlmException($"{path} at {_http.BaseAddress}: an empty answer"); }
        catch (JsonException e) { throw new LlmException($"{path} at {_http.BaseAddress}: the answer is not JSON ({e.Message.ReplaceLineEndings(" ")})", e); }
    }

    /// <summary>GET {endpoint}/{path}, retried as the class says; the answer as JSON.</summary>
    public async Task<JsonNode> GetAsync(string path, CancellationToken cancellationToken = default)
    {
        var text = await SendAsync(HttpMethod.Get, path, null, cancellationToken);
        try { return JsonNode.Parse(text) ?? throw new LlmException($"{path} at {_http.BaseAddress}: an empty answer"); }
        catch (JsonException e) { throw new LlmException($"{path} at {_http.BaseAddress}: the answer is not JSON ({e.Message.ReplaceLineEndings(" ")})", e); }
    }

    /// <summary>POST that returns the answer's text (vLLM's adapter calls answer in plain text).</summary>
    public Task<string> PostTextAsync(string path, string json, CancellationToken cancellationToken = default) =>
        SendAsync(HttpMethod.Post, path, json, cancellationToken);

    async Task<string> SendAsync(HttpMethod method, string path, string? json, CancellationToken cancellationToken)
    {
        var what = path.Replace('/', ' ');
        for (var attempt = 0; ; attempt++)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(_config.TimeoutSeconds));
            string problem;
            TimeSpan? retryAfter = null;
            try
            {
                using var request = new HttpRequestMessage(method, path);
                if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
                if (!string.IsNullOrEmpty(_key)) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _key);
                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
                var text = await ReadLimitedAsync(response.Content, timeout.Token);
                if (response.IsSuccessStatusCode) return text;
                problem = $"HTTP {(int)response.StatusCode}{ErrorMessage(text)}";
                if (response.StatusCode != HttpStatusCode.TooManyRequests && (int)response.StatusCode < 500)
                    throw new LlmException($"{what} at {_http.BaseAddress}: {problem}") { Status = (int)response.StatusCode };
                retryAfter = response.Headers.RetryAfter?.Delta;
            }
            catch (HttpRequestException e) { problem = $"cannot connect: {e.Message.ReplaceLineEndings(" ")}"; }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested) { problem = $"no answer within {_config.TimeoutSeconds} s"; }
            if (attempt >= _config.MaxRetries)
                throw new LlmException($"{what} at {_http.BaseAddress}: {problem} (after {attempt + 1} attempts)");
            var delay = retryAfter ?? TimeSpan.FromTicks(_backoff.Ticks * (1L << Math.Min(attempt, 10)));
            await Task.Delay(delay, cancellationToken);
        }
    }

    static async Task<string> ReadLimitedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength > MaxResponseBytes) throw TooLarge();
        await using var stream = await content.ReadAsStreamAsync(cancellationToken);
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = await stream.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + n > MaxResponseBytes) throw TooLarge();
            buffer.Write(chunk, 0, n);
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    static LlmException TooLarge() => new($"the answer is larger than {MaxResponseBytes / (1024 * 1024)} MB; refused");

    static IReadOnlyList<string> ParseChoices(string text)
    {
        try
        {
            var choices = JsonNode.Parse(text)?["choices"]?.AsArray() ?? throw new LlmException("chat completions: the answer has no \"choices\"");
            return choices.Select(c => c?["message"]?["content"]?.GetValue<string>() ?? throw new LlmException("chat completions: a choice has no message content"))
                .ToList();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new LlmException($"chat completions: the answer is not a chat completion ({e.Message.ReplaceLineEndings(" ")})", e);
        }
    }

    static string ErrorMessage(string body)
    {
        try { return JsonNode.Parse(body)?["error"]?["message"]?.GetValue<string>() is { } m ? ": " + m.ReplaceLineEndings(" ") : ""; }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { return ""; }
    }

    public void Dispose() => _http.Dispose();
}

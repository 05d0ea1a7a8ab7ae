using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using SelfPlay.Models.Generation;
using SelfPlay.Models.Tokenization;

namespace SelfPlay.Cli.Serve;

/// <summary>
/// The OpenAI-compatible HTTP API over a <see cref="GenerationEngine"/>: <c>GET /v1/models</c>,
/// <c>POST /v1/completions</c>, <c>POST /v1/chat/completions</c> (streamed as server-sent events with
/// <c>stream: true</c>), and vLLM's <c>POST /v1/load_lora_adapter</c> / <c>/v1/unload_lora_adapter</c>. Errors are
/// OpenAI's error body with the status the API uses (400 bad request, 401 bad key, 404 unknown model).
/// </summary>
public static class OpenAiServer
{
    public static WebApplication Build(GenerationEngine engine, string host, int port, string? apiKey)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://{(host.Contains(':') ? $"[{host}]" : host)}:{port}");
        var app = builder.Build();
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (apiKey is not null)
        {
            var expected = Encoding.UTF8.GetBytes("Bearer " + apiKey);
            app.Use(async (context, next) =>
            {
                var given = Encoding.UTF8.GetBytes(context.Request.Headers.Authorization.ToString());
                if (context.Request.Path.StartsWithSegments("/v1") && !CryptographicOperations.FixedTimeEquals(given, expected))
                {
                    await WriteError(context, new ApiError(401, "Incorrect API key provided.", code: "invalid_api_key"));
                    return;
                }
                await next(context);
            });
        }
        app.MapGet("/health", () => Results.Ok());
        app.MapGet("/v1/models", () => Json(new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray([.. engine.Models.Select(m => (JsonNode)new JsonObject
            {
                ["id"] = m.Name, ["object"] = "model", ["created"] = created, ["owned_by"] = "selfplay", ["root"] = m.Directory,
                ["parent"] = m.Name == engine.BaseName ? null : engine.BaseName,
            })]),
        }));
        app.MapPost("/v1/completions", context => Guarded(context, () => GenerateAsync(context, engine, chat: false)));
        app.MapPost("/v1/chat/completions", context => Guarded(context, () => GenerateAsync(context, engine, chat: true)));
        app.MapPost("/v1/load_lora_adapter", context => Guarded(context, async () =>
        {
            var (name, path) = AdapterBody(await ReadBody(context), needsPath: true);
            if (engine.Serves(name)) throw new ApiError(400, $"The lora adapter '{name}' has already been loaded.", "lora_name");
            if (!Directory.Exists(path)) throw new ApiError(400, $"lora_path {path} is not a folder.", "lora_path");
            try { await engine.LoadAdapterAsync(name, path); }
            catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException)
            {
                throw new ApiError(400, e.Message.ReplaceLineEndings(" "), "lora_path");
            }
            await Text(context, $"Success: LoRA adapter '{name}' added successfully.");
        }));
        app.MapPost("/v1/unload_lora_adapter", context => Guarded(context, async () =>
        {
            var (name, _) = AdapterBody(await ReadBody(context), needsPath: false);
            if (name == engine.BaseName) throw new ApiError(400, $"The base model '{name}' cannot be unloaded.", "lora_name");
            if (!engine.Serves(name)) throw new ApiError(404, $"The lora adapter '{name}' cannot be found.", "lora_name", "model_not_found", "NotFoundError");
            await engine.UnloadAdapterAsync(name);
            await Text(context, $"Success: LoRA adapter '{name}' removed successfully.");
        }));
        return app;
    }

    static (string Name, string Path) AdapterBody(JsonObject body, bool needsPath)
    {
        var name = body["lora_name"] is JsonValue n && n.TryGetValue<string>(out var s) && s.Length > 0 ? s : throw new ApiError(400, "lora_name must be a non-empty string.", "lora_name");
        var path = body["lora_path"] is JsonValue p && p.TryGetValue<string>(out var ps) ? ps : "";
        if (needsPath && path.Length == 0) throw new ApiError(400, "lora_path must be a non-empty string.", "lora_path");
        return (name, path);
    }

    static async Task Guarded(HttpContext context, Func<Task> handle)
    {
        try { await handle(); }
        catch (ApiError e) when (!context.Response.HasStarted) { await WriteError(context, e); }
        catch (UnknownModelException e) when (!context.Response.HasStarted)
        {
            await WriteError(context, new ApiError(404, e.Message, "model", "model_not_found", "NotFoundError"));
        }
        catch (ArgumentException e) when (!context.Response.HasStarted) { await WriteError(context, new ApiError(400, e.Message)); }
    }

    static async Task<JsonObject> ReadBody(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        return OpenAiRequest.ParseBody(await reader.ReadToEndAsync());
    }

    static async Task GenerateAsync(HttpContext context, GenerationEngine engine, bool chat)
    {
        var body = await ReadBody(context);
        var tokenizer = engine.Tokenizer;
        var context_ = engine.Config.MaxPositionEmbeddings;
        var call = chat
            ? OpenAiRequest.ChatCompletion(body, engine.BaseName, tokenizer, engine.ChatTemplate, context_, EndOfTurn(engine))
            : OpenAiRequest.Completion(body, engine.BaseName, tokenizer, context_);
        if (!engine.Serves(call.Model)) throw new UnknownModelException(call.Model);
        var requests = call.Prompts.Select(p => new SampleRequest(p, call.MaxTokens == 0 ? 0 : call.N, call.Temperature, call.MaxTokens, call.StopIds)
        {
            TopP = call.TopP, TopK = call.TopK, StopStrings = call.Stop, Seed = call.Seed, TopLogProbs = call.LogProbs ?? 0,
        }).ToList();
        var id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Func<int, string> name = call.TokensAsIds ? t => $"token_id:{t}" : t => TokenString(tokenizer, t);
        var wantsPromptScores = call.Echo && call.LogProbs is not null;
        var promptScores = wantsPromptScores ? await Task.WhenAll(call.Prompts.Select(p => engine.ScoreAsync(call.Model, p, call.LogProbs!.Value))) : null;

        if (!call.Stream)
        {
            var samples = call.MaxTokens == 0 ? [.. call.Prompts.Select(_ => new[] { new Sample([], [], false) })] : await engine.GenerateAsync(call.Model, requests);
            var choices = new JsonArray();
            var completionTokens = 0;
            for (var p = 0; p < samples.Count; p++)
                for (var j = 0; j < samples[p].Length; j++)
                {
                    var answer = Answer.Of(engine, call, samples[p][j]);
                    completionTokens += samples[p][j].TokenIds.Length;
                    choices.Add(chat
                        ? new JsonObject
                        {
                            ["index"] = p * call.N + j,
                            ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = answer.Text },
                            ["logprobs"] = call.LogProbs is null ? null : new JsonObject { ["content"] = ChatLogProbs(name, answer.Tokens) },
                            ["finish_reason"] = answer.FinishReason,
                        }
                        : CompletionChoice(tokenizer, name, call, p * call.N + j, call.Prompts[p], promptScores?[p], answer, answer.Text, answer.Tokens, answer.FinishReason));
                }
            await Json(new JsonObject
            {
                ["id"] = id, ["object"] = chat ? "chat.completion" : "text_completion", ["created"] = created, ["model"] = call.Model,
                ["choices"] = choices, ["usage"] = Usage(call, completionTokens),
            }).ExecuteAsync(context);
            return;
        }

        // Streaming: every token reaches the channel as it is generated; text is sent once it cannot be part of a stop
        // string and ends on a whole character.
        context.Response.Headers.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        var tokens = Channel.CreateUnbounded<GeneratedToken>(new UnboundedChannelOptions { SingleReader = true });
        var generation = call.MaxTokens == 0
            ? Task.FromResult<IReadOnlyList<Sample[]>>([.. call.Prompts.Select(_ => new[] { new Sample([], [], false) })])
            : engine.GenerateAsync(call.Model, requests, t => tokens.Writer.TryWrite(t));
        _ = generation.ContinueWith(t => tokens.Writer.TryComplete(t.Exception), TaskScheduler.Default);
        var progress = new Dictionary<(int, int), StreamedChoice>();
        StreamedChoice Progress(int p, int j)
        {
            if (!progress.TryGetValue((p, j), out var c)) progress[(p, j)] = c = new StreamedChoice();
            return c;
        }
        async Task Send(JsonObject chunk) =>
            await context.Response.WriteAsync("data: " + chunk.ToJsonString() + "\n\n", context.RequestAborted);
        JsonObject Chunk(JsonObject choice) => new()
        {
            ["id"] = id, ["object"] = chat ? "chat.completion.chunk" : "text_completion", ["created"] = created, ["model"] = call.Model,
            ["choices"] = new JsonArray(choice),
        };
        async Task SendText(int p, int j, string text, IReadOnlyList<AnswerToken> newTokens, string? finish, bool first)
        {
            var index = p * call.N + j;
            if (chat)
            {
                var delta = new JsonObject();
                if (first) delta["role"] = "assistant";
                if (text.Length > 0 || first) delta["content"] = text;
                await Send(Chunk(new JsonObject
                {
                    ["index"] = index, ["delta"] = delta,
                    ["logprobs"] = call.LogProbs is null || newTokens.Count == 0 ? null : new JsonObject { ["content"] = ChatLogProbs(name, newTokens) },
                    ["finish_reason"] = finish,
                }));
            }
            else await Send(Chunk(CompletionChoice(tokenizer, name, call, index, first ? call.Prompts[p] : null, first ? promptScores?[p] : null, null, text, newTokens, finish)));
        }

        try
        {
            await foreach (var token in tokens.Reader.ReadAllAsync(context.RequestAborted))
            {
                var choice = Progress(token.Request, token.Sample);
                choice.Add(token);
                var (text, newTokens) = choice.Ready(engine, call, final: false);
                if (text.Length > 0 || newTokens.Count > 0 && call.LogProbs is not null || !choice.Started)
                {
                    await SendText(token.Request, token.Sample, text, newTokens, null, !choice.Started);
                    choice.Started = true;
                }
            }
        }
        catch (ChannelClosedException e) when (e.InnerException is not null)
        {
            // The batch failed after the stream began: say so in the stream (the status line is already sent).
            await Send(new ApiError(500, (e.InnerException.InnerException ?? e.InnerException).Message.ReplaceLineEndings(" "), type: "server_error").Body());
            await context.Response.WriteAsync("data: [DONE]\n\n");
            return;
        }
        var results = await generation;
        var total = 0;
        for (var p = 0; p < results.Count; p++)
            for (var j = 0; j < results[p].Length; j++)
            {
                var choice = Progress(p, j);
                var answer = Answer.Of(engine, call, results[p][j]);
                total += results[p][j].TokenIds.Length;
                var (text, newTokens) = choice.Ready(engine, call, final: true, answer);
                await SendText(p, j, text, newTokens, answer.FinishReason, !choice.Started);
                choice.Started = true;
            }
        if (call.IncludeUsage)
            await Send(new JsonObject
            {
                ["id"] = id, ["object"] = chat ? "chat.completion.chunk" : "text_completion", ["created"] = created, ["model"] = call.Model,
                ["choices"] = new JsonArray(), ["usage"] = Usage(call, total),
            });
        await context.Response.WriteAsync("data: [DONE]\n\n");
    }

    static IReadOnlyList<int[]> EndOfTurn(GenerationEngine engine) => engine.ChatTemplate.Kind switch
    {
        "chatml" => [engine.Tokenizer.Encode("<|im_end|>")],
        "llama3" => [engine.Tokenizer.Encode("<|eot_id|>")],
        _ => [],
    };

    static JsonObject Usage(GenerationCall call, int completionTokens)
    {
        var prompt = call.Prompts.Sum(p => p.Length);
        return new JsonObject { ["prompt_tokens"] = prompt, ["completion_tokens"] = completionTokens, ["total_tokens"] = prompt + completionTokens };
    }

    /// <summary>A completions choice; with echo the prompt's text (and its tokens' log-probs, the first null) come first.</summary>
    static JsonObject CompletionChoice(ITokenizer tokenizer, Func<int, string> name, GenerationCall call, int index, int[]? echoPrompt, PromptScore? promptScore, Answer? answer,
        string text, IReadOnlyList<AnswerToken> tokens, string? finish)
    {
        var echo = call.Echo && echoPrompt is not null;
        var promptText = echo ? tokenizer.Decode(echoPrompt!) : "";
        JsonObject? logProbs = null;
        if (call.LogProbs is { } top)
        {
            var (names, values, tops, offsets) = (new JsonArray(), new JsonArray(), new JsonArray(), new JsonArray());
            var offset = 0;
            if (echo)
            {
                for (var t = 0; t < echoPrompt!.Length; t++)
                {
                    names.Add(name(echoPrompt[t]));
                    values.Add(t == 0 ? null : (JsonNode)JsonValue.Create(promptScore!.LogProbs[t - 1]));
                    tops.Add(t == 0 || top == 0 ? null : TopObject(name, promptScore!.Top[t - 1]));
                    offsets.Add(offset);
                    offset += tokenizer.Decode(echoPrompt[t..(t + 1)]).Length;
                }
                offset = promptText.Length;
            }
            foreach (var token in tokens)
            {
                names.Add(name(token.Id));
                values.Add(token.LogProb);
                tops.Add(top == 0 ? null : TopObject(name, token.Top));
                offsets.Add(offset + token.Offset);
            }
            logProbs = new JsonObject { ["tokens"] = names, ["token_logprobs"] = values, ["top_logprobs"] = tops, ["text_offset"] = offsets };
        }
        return new JsonObject { ["index"] = index, ["text"] = promptText + text, ["logprobs"] = logProbs, ["finish_reason"] = finish };
    }

    static JsonObject TopObject(Func<int, string> name, IReadOnlyList<TokenLogProb> top)
    {
        var o = new JsonObject();
        foreach (var t in top) o[name(t.Id)] ??= t.LogProb; // two ids with one text: the likelier one
        return o;
    }

    static JsonArray ChatLogProbs(Func<int, string> name, IReadOnlyList<AnswerToken> tokens) =>
        new([.. tokens.Select(t => (JsonNode)new JsonObject
        {
            ["token"] = name(t.Id), ["logprob"] = t.LogProb, ["bytes"] = Bytes(name(t.Id)),
            ["top_logprobs"] = new JsonArray([.. t.Top.Select(a => (JsonNode)new JsonObject
            {
                ["token"] = name(a.Id), ["logprob"] = a.LogProb, ["bytes"] = Bytes(name(a.Id)),
            })]),
        })]);

    static JsonArray Bytes(string text) => new([.. Encoding.UTF8.GetBytes(text).Select(b => (JsonNode)(int)b)]);

    /// <summary>The token's text; a special token (which decoding leaves out) by its vocabulary spelling.</summary>
    static string TokenString(ITokenizer tokenizer, int id) => tokenizer.Decode([id]) is { Length: > 0 } text ? text : tokenizer.TokenText(id);

    static async Task WriteError(HttpContext context, ApiError error) =>
        await Results.Json(error.Body(), statusCode: error.Status).ExecuteAsync(context);

    static IResult Json(JsonObject body) => Results.Text(body.ToJsonString(), "application/json", Encoding.UTF8);

    static Task Text(HttpContext context, string text) => Results.Text(text, "text/plain", Encoding.UTF8).ExecuteAsync(context);
}

/// <summary>A generated token as the API reports it: its log-prob, alternatives and where its text starts in the answer.</summary>
public sealed record AnswerToken(int Id, float LogProb, TokenLogProb[] Top, int Offset);

/// <summary>
/// What a sample says as an answer: its text without the end-of-sequence token, cut before the first stop string (as
/// OpenAI does), its tokens (chat: those of the message), and why it ended.
/// </summary>
public sealed record Answer(string Text, IReadOnlyList<AnswerToken> Tokens, string FinishReason)
{
    public static Answer Of(GenerationEngine engine, GenerationCall call, Sample sample)
    {
        var tokens = sample.TokenIds.Select((id, i) => new GeneratedToken(0, 0, id, sample.LogProbs[i], i < sample.TopLogProbs.Count ? sample.TopLogProbs[i] : [])).ToList();
        var (text, kept, _) = Cut(engine, call, tokens);
        return new Answer(text, kept, sample.Stopped ? "stop" : "length");
    }

    /// <summary>The text of the tokens so far and the tokens it holds, and whether a stop ended it.</summary>
    public static (string Text, IReadOnlyList<AnswerToken> Tokens, bool Stopped) Cut(GenerationEngine engine, GenerationCall call, IReadOnlyList<GeneratedToken> tokens)
    {
        var ids = tokens.Select(t => t.Id).ToList();
        var drop = 0;
        if (ids.Count > 0 && engine.Config.IsEos(ids[^1])) drop = 1;
        else
            foreach (var stop in call.StopIds)
                if (stop.Length > 0 && ids.Count >= stop.Length && ids.Skip(ids.Count - stop.Length).SequenceEqual(stop)) { drop = stop.Length; break; }
        var kept = tokens.Take(tokens.Count - drop).ToList();
        var text = engine.Tokenizer.Decode(kept.Select(t => t.Id));
        var cut = call.Stop.Select(s => text.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min();
        if (cut >= 0) text = text[..cut];
        // Chat reports the tokens of the message; completions every generated token (the stop string's and EOS too,
        // as vLLM does), which is what a caller re-scoring the sample needs.
        var reported = call.Chat ? kept : tokens;
        var answer = new List<AnswerToken>();
        for (var i = 0; i < reported.Count; i++)
        {
            var start = i == 0 ? 0 : Math.Min(text.Length, engine.Tokenizer.Decode(reported.Take(i).Select(t => t.Id)).Length);
            if (call.Chat && cut >= 0 && start >= text.Length) break; // the stop string's tokens
            answer.Add(new AnswerToken(reported[i].Id, reported[i].LogProb, reported[i].Top, start));
        }
        return (text, answer, drop > 0 || cut >= 0);
    }
}

/// <summary>One streamed choice: its tokens so far and how much of its text and tokens were sent.</summary>
sealed class StreamedChoice
{
    readonly List<GeneratedToken> _tokens = [];
    int _sentChars, _sentTokens;
    public bool Started { get; set; }

    public void Add(GeneratedToken token) => _tokens.Add(token);

    /// <summary>
    /// The text and tokens that may be sent now: all of it at the end; before that, nothing that could still turn out
    /// to be the start of a stop string or half of a character.
    /// </summary>
    public (string Text, IReadOnlyList<AnswerToken> Tokens) Ready(GenerationEngine engine, GenerationCall call, bool final, Answer? answer = null)
    {
        var (text, tokens) = answer is not null ? (answer.Text, answer.Tokens) : CutNow(engine, call);
        var ready = text.Length;
        if (!final)
        {
            ready -= call.Stop.Select(s => s.Length - 1).DefaultIfEmpty(0).Max();
            if (text.EndsWith('\uFFFD')) ready = Math.Min(ready, text.Length - 1);
        }
        ready = Math.Max(ready, _sentChars);
        var sendTokens = tokens.Skip(_sentTokens).Where(t => final || t.Offset < ready).ToList();
        var chunk = text[_sentChars..Math.Min(ready, text.Length)];
        (_sentChars, _sentTokens) = (Math.Min(ready, text.Length), _sentTokens + sendTokens.Count);
        return (chunk, sendTokens);
    }

    (string, IReadOnlyList<AnswerToken>) CutNow(GenerationEngine engine, GenerationCall call)
    {
        var (text, tokens, _) = Answer.Cut(engine, call, _tokens);
        return (text, tokens);
    }
}

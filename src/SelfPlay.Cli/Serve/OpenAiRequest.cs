using System.Text.Json.Nodes;
using SelfPlay.Models.Tokenization;

namespace SelfPlay.Cli.Serve;

/// <summary>An error the OpenAI API would answer with: the HTTP status and its error body's fields.</summary>
public sealed class ApiError(int status, string message, string? param = null, string? code = null, string type = "invalid_request_error") : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    public string Type { get; } = type;

    public JsonObject Body() => new() { ["error"] = new JsonObject { ["message"] = Message, ["type"] = Type, ["param"] = Param, ["code"] = Code } };
}

/// <summary>What a completions or chat request asks for, validated: the prompts as token ids and the sampling settings.</summary>
public sealed record GenerationCall(
    bool Chat,
    string Model,
    IReadOnlyList<int[]> Prompts,
    int MaxTokens,
    double Temperature,
    double TopP,
    int TopK,
    int N,
    IReadOnlyList<string> Stop,
    long? Seed,
    int? LogProbs,
    bool Echo,
    bool Stream,
    bool IncludeUsage)
{
    /// <summary>Token sequences that end the answer and are not part of its text (a chat format's end of turn).</summary>
    public IReadOnlyList<int[]> StopIds { get; init; } = [];
    /// <summary>vLLM's return_tokens_as_token_ids: log-prob tokens named "token_id:N", what a learner needs to re-score them.</summary>
    public bool TokensAsIds { get; init; }
}

/// <summary>
/// Reads the JSON of <c>POST /v1/completions</c> and <c>/v1/chat/completions</c> as the OpenAI API reference defines
/// them (plus vLLM's <c>top_k</c>). A field this server cannot honour (a penalty, logit_bias, tools) or does not know
/// is a 400 naming it, never silently ignored.
/// </summary>
public static class OpenAiRequest
{
    static readonly HashSet<string> Common = ["model", "max_tokens", "temperature", "top_p", "top_k", "n", "stop", "seed", "stream", "stream_options", "user",
        "presence_penalty", "frequency_penalty", "logit_bias", "return_tokens_as_token_ids"];
    static readonly HashSet<string> CompletionFields = [.. Common, "prompt", "logprobs", "echo", "best_of", "suffix"];
    static readonly HashSet<string> ChatFields = [.. Common, "messages", "logprobs", "top_logprobs", "max_completion_tokens"];
    public const int MaxLogProbs = 20;

    public static JsonObject ParseBody(string body)
    {
        try
        {
            return JsonNode.Parse(body) as JsonObject ?? throw new ApiError(400, "The request body must be a JSON object.");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new ApiError(400, $"We could not parse the JSON body of your request ({e.Message}).");
        }
    }

    public static GenerationCall Completion(JsonObject body, string defaultModel, ITokenizer tokenizer, int contextLength)
    {
        CheckFields(body, CompletionFields);
        Unsupported(body);
        if (body["suffix"] is not null) throw new ApiError(400, "suffix is not supported.", "suffix");
        var prompts = Prompts(body["prompt"] ?? throw new ApiError(400, "you must provide a prompt", "prompt"), tokenizer);
        var n = Int(body, "n", 1, 1, 128);
        if (body["best_of"] is not null && Int(body, "best_of", n, 1, 128) != n) throw new ApiError(400, "best_of other than n is not supported.", "best_of");
        var logProbs = body["logprobs"] is null ? (int?)null : Int(body, "logprobs", 0, 0, MaxLogProbs);
        var call = Sampling(body, defaultModel, prompts, Int(body, "max_tokens", 16, 0, int.MaxValue), n, logProbs, Bool(body, "echo"), chat: false);
        if (call.MaxTokens == 0 && !call.Echo) throw new ApiError(400, "max_tokens must be at least 1 (0 only with echo, to score the prompt).", "max_tokens");
        return CheckContext(call, contextLength, "prompt");
    }

    public static GenerationCall ChatCompletion(JsonObject body, string defaultModel, ITokenizer tokenizer, ChatTemplate template, int contextLength,
        IReadOnlyList<int[]> endOfTurn)
    {
        CheckFields(body, ChatFields);
        Unsupported(body);
        var messages = Messages(body["messages"] ?? throw new ApiError(400, "you must provide messages", "messages"));
        var prompt = tokenizer.EncodePrompt(template.Render(messages, addGenerationPrompt: true));
        var wantLogProbs = Bool(body, "logprobs");
        var top = body["top_logprobs"] is null ? 0 : Int(body, "top_logprobs", 0, 0, MaxLogProbs);
        if (top > 0 && !wantLogProbs) throw new ApiError(400, "top_logprobs needs logprobs = true.", "top_logprobs");
        var maxTokens = body["max_completion_tokens"] is not null ? Int(body, "max_completion_tokens", 0, 1, int.MaxValue)
            : body["max_tokens"] is not null ? Int(body, "max_tokens", 0, 1, int.MaxValue)
            : Math.Max(1, contextLength - prompt.Length);
        var call = Sampling(body, defaultModel, [prompt], maxTokens, Int(body, "n", 1, 1, 128), wantLogProbs ? top : null, echo: false, chat: true);
        return CheckContext(call with { StopIds = endOfTurn }, contextLength, "messages");
    }

    static GenerationCall Sampling(JsonObject body, string defaultModel, IReadOnlyList<int[]> prompts, int maxTokens, int n, int? logProbs, bool echo, bool chat)
    {
        var model = body["model"] is null ? defaultModel : String(body, "model");
        var temperature = Number(body, "temperature", 1, 0, 2);
        var topP = Number(body, "top_p", 1, 0, 1);
        if (topP <= 0) throw new ApiError(400, $"top_p must be in (0, 1], got {topP}.", "top_p");
        var topK = body["top_k"] is null ? 0 : Int(body, "top_k", 0, -1, int.MaxValue);
        var stream = Bool(body, "stream");
        var includeUsage = false;
        if (body["stream_options"] is JsonObject options)
        {
            if (!stream) throw new ApiError(400, "stream_options is only allowed with stream = true.", "stream_options");
            includeUsage = options["include_usage"] is JsonValue v && v.TryGetValue<bool>(out var b) && b;
        }
        else if (body["stream_options"] is not null) throw new ApiError(400, "stream_options must be an object.", "stream_options");
        long? seed = body["seed"] is null ? null : body["seed"] is JsonValue sv && sv.TryGetValue<long>(out var s) ? s : throw new ApiError(400, "seed must be an integer.", "seed");
        return new GenerationCall(chat, model, prompts, maxTokens, temperature, topP, Math.Max(0, topK), n, Stops(body["stop"]), seed, logProbs, echo, stream, includeUsage)
        {
            TokensAsIds = Bool(body, "return_tokens_as_token_ids"),
        };
    }

    static GenerationCall CheckContext(GenerationCall call, int contextLength, string param)
    {
        foreach (var prompt in call.Prompts)
            if (prompt.Length + call.MaxTokens > contextLength)
                throw new ApiError(400, $"This model's maximum context length is {contextLength} tokens. However, you requested {prompt.Length + call.MaxTokens} tokens " +
                                        $"({prompt.Length} in the {param}, {call.MaxTokens} in the completion). Please reduce the length of the {param} or completion.",
                    param, "context_length_exceeded");
        return call;
    }

    static void CheckFields(JsonObject body, HashSet<string> known)
    {
        foreach (var (name, _) in body)
            if (!known.Contains(name)) throw new ApiError(400, $"Unrecognized request argument supplied: {name}", name);
    }

    static void Unsupported(JsonObject body)
    {
        foreach (var penalty in new[] { "presence_penalty", "frequency_penalty" })
            if (body[penalty] is not null && Number(body, penalty, 0, -2, 2) != 0) throw new ApiError(400, $"{penalty} other than 0 is not supported.", penalty);
        if (body["logit_bias"] is JsonObject { Count: > 0 }) throw new ApiError(400, "logit_bias is not supported.", "logit_bias");
    }

    /// <summary>A prompt as text, a list of texts, token ids, or a list of token-id lists; texts get the tokenizer's BOS.</summary>
    static IReadOnlyList<int[]> Prompts(JsonNode prompt, ITokenizer tokenizer)
    {
        switch (prompt)
        {
            case JsonValue v when v.TryGetValue<string>(out var text):
                return [tokenizer.EncodePrompt(text)];
            case JsonArray { Count: > 0 } a when a.All(x => x is JsonValue xv && xv.TryGetValue<string>(out _)):
                return [.. a.Select(x => tokenizer.EncodePrompt(x!.GetValue<string>()))];
            case JsonArray { Count: > 0 } a when a.All(x => x is JsonValue):
                return [Ids(a, tokenizer)];
            case JsonArray { Count: > 0 } a when a.All(x => x is JsonArray):
                return [.. a.Select(x => Ids((JsonArray)x!, tokenizer))];
            default:
                throw new ApiError(400, "prompt must be a string, a list of strings, a list of token ids or a list of token-id lists (none empty).", "prompt");
        }
    }

    static int[] Ids(JsonArray ids, ITokenizer tokenizer)
    {
        if (ids.Count == 0) throw new ApiError(400, "a token-id prompt must not be empty.", "prompt");
        return [.. ids.Select(x => x is JsonValue v && v.TryGetValue<int>(out var id) && id >= 0 && id < tokenizer.VocabSize ? id
            : throw new ApiError(400, $"token ids must be integers in 0..{tokenizer.VocabSize - 1}, got {x?.ToJsonString() ?? "null"}.", "prompt"))];
    }

    static IReadOnlyList<ChatMessage> Messages(JsonNode node)
    {
        if (node is not JsonArray { Count: > 0 } list) throw new ApiError(400, "messages must be a non-empty list.", "messages");
        var messages = new List<ChatMessage>();
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i] is not JsonObject m) throw new ApiError(400, $"messages[{i}] must be an object.", $"messages.[{i}]");
            var role = m["role"] is JsonValue r && r.TryGetValue<string>(out var rs) ? rs : throw new ApiError(400, $"messages[{i}].role is missing.", $"messages.[{i}].role");
            if (role is not ("system" or "developer" or "user" or "assistant"))
                throw new ApiError(400, $"messages[{i}].role must be system, developer, user or assistant, got '{role}'.", $"messages.[{i}].role");
            var content = m["content"] switch
            {
                JsonValue c when c.TryGetValue<string>(out var text) => text,
                JsonArray parts when parts.All(p => p is JsonObject po && po["type"]?.GetValue<string>() == "text") =>
                    string.Concat(parts.Select(p => p!["text"]?.GetValue<string>() ?? "")),
                _ => throw new ApiError(400, $"messages[{i}].content must be a string or a list of text parts.", $"messages.[{i}].content"),
            };
            messages.Add(new ChatMessage(role == "developer" ? "system" : role, content));
        }
        return messages;
    }

    static IReadOnlyList<string> Stops(JsonNode? node) => node switch
    {
        null => [],
        JsonValue v when v.TryGetValue<string>(out var s) => s.Length > 0 ? [s] : [],
        JsonArray { Count: <= 4 } a when a.All(x => x is JsonValue xv && xv.TryGetValue<string>(out _)) => [.. a.Select(x => x!.GetValue<string>()).Where(s => s.Length > 0)],
        _ => throw new ApiError(400, "stop must be a string or a list of at most 4 strings.", "stop"),
    };

    static string String(JsonObject body, string name) =>
        body[name] is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new ApiError(400, $"{name} must be a string.", name);

    static bool Bool(JsonObject body, string name) => body[name] switch
    {
        null => false,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        _ => throw new ApiError(400, $"{name} must be true or false.", name),
    };

    static int Int(JsonObject body, string name, int fallback, int min, int max)
    {
        if (body[name] is null) return fallback;
        if (body[name] is not JsonValue v || !v.TryGetValue<long>(out var x)) throw new ApiError(400, $"{name} must be an integer.", name);
        if (x < min || x > max) throw new ApiError(400, $"{name} must be {(max == int.MaxValue ? $"at least {min}" : $"in {min}..{max}")}, got {x}.", name);
        return (int)x;
    }

    static double Number(JsonObject body, string name, double fallback, double min, double max)
    {
        if (body[name] is null) return fallback;
        if (body[name] is not JsonValue v || !v.TryGetValue<double>(out var x)) throw new ApiError(400, $"{name} must be a number.", name);
        if (x < min || x > max) throw new ApiError(400, $"{name} must be in [{min}, {max}], got {x}.", name);
        return x;
    }
}

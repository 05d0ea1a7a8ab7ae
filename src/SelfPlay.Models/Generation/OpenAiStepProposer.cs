using System.Globalization;
using System.Text.Json.Nodes;
using SelfPlay.Core.Llm;
using SelfPlay.Core.Search;
using SelfPlay.Models.Tokenization;

namespace SelfPlay.Models.Generation;

/// <summary>
/// The search's expander on an OpenAI-compatible server (inference.backend = openai): each state is sent as the
/// token ids <see cref="PolicyEncoding"/> gives it (so the server conditions on exactly the tokens the learner
/// scores), with the step stop, the request's seed and n, and the generated tokens come back as ids with their
/// log-probs (vLLM's <c>return_tokens_as_token_ids</c>), as <see cref="PolicyStepProposer"/> returns them locally.
/// At most <paramref name="maxConcurrency"/> requests are in flight; the server batches them.
/// </summary>
public sealed class OpenAiStepProposer(OpenAiClient client, string model, ITokenizer tokenizer, string stepStop, int maxStepTokens, int maxConcurrency)
    : IStepProposer
{
    readonly SemaphoreSlim _slots = new(maxConcurrency);

    /// <summary>The server's name of the policy version these steps come from.</summary>
    public string Model => model;

    public async Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken cancellationToken = default) =>
        await Task.WhenAll(requests.Select(r => ProposeOneAsync(r, cancellationToken)));

    async Task<IReadOnlyList<ProposedStep>> ProposeOneAsync(ProposalRequest request, CancellationToken cancellationToken)
    {
        var body = new JsonObject
        {
            ["model"] = model,
            ["prompt"] = new JsonArray([.. PolicyEncoding.Prompt(tokenizer, request.State).Select(id => (JsonNode)id)]),
            ["max_tokens"] = maxStepTokens,
            ["temperature"] = request.Temperature,
            ["n"] = request.Count,
            ["seed"] = request.Seed,
            ["stop"] = new JsonArray(stepStop),
            ["logprobs"] = 0,
            ["return_tokens_as_token_ids"] = true,
        };
        await _slots.WaitAsync(cancellationToken);
        JsonNode answer;
        try { answer = await client.PostAsync("completions", body, cancellationToken); }
        finally { _slots.Release(); }
        try
        {
            var choices = answer["choices"]!.AsArray().OrderBy(c => c!["index"]!.GetValue<int>()).ToList();
            if (choices.Count != request.Count) throw new LlmException($"completions: asked for {request.Count} choices, got {choices.Count}");
            return [.. choices.Select(c => Step(c!))];
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException)
        {
            throw new LlmException($"completions: the answer is not a completion with token-id log-probs ({e.Message.ReplaceLineEndings(" ")})", e);
        }
    }

    /// <summary>The server cut the text at the stop string (as OpenAI does); the tokens are all that were generated.</summary>
    static ProposedStep Step(JsonNode choice)
    {
        var logProbs = choice["logprobs"]!;
        var ids = logProbs["tokens"]!.AsArray().Select(t => TokenId(t!.GetValue<string>())).ToArray();
        var values = logProbs["token_logprobs"]!.AsArray().Select(v => v!.GetValue<float>()).ToArray();
        if (ids.Length != values.Length) throw new FormatException($"{ids.Length} tokens but {values.Length} log-probs");
        return new ProposedStep(choice["text"]!.GetValue<string>(), ids, values);
    }

    static int TokenId(string token) =>
        token.StartsWith("token_id:", StringComparison.Ordinal) && int.TryParse(token.AsSpan("token_id:".Length), NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? id
            : throw new FormatException($"token '{token}' is not token_id:N (the server ignores return_tokens_as_token_ids)");
}

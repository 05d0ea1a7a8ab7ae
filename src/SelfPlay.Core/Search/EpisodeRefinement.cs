using SelfPlay.Core.Environments;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Search;

/// <summary>
/// SPaR's judge for a verifiable environment: the verifier, asked once (it is deterministic, so its n votes agree):
/// Yes when the episode verifies with full reward, else No; the critique is the verifier's reason.
/// </summary>
public sealed class VerifierJudge(IEnvironmentSteps environment) : IJudge
{
    /// <summary>Verifies in this process.</summary>
    public VerifierJudge(IEnvironment environment) : this(new InlineEnvironmentSteps(environment)) { }

    public string Name => "verifier";

    public async Task<IReadOnlyList<Judgement>> JudgeAsync(EnvTask task, string response, int samples, long seed, CancellationToken cancellationToken = default)
    {
        VerifiedState verdict;
        try { verdict = (await environment.VerifyAsync(task, [await environment.InitialStateAsync(task, cancellationToken) + response], cancellationToken))[0]; }
        catch (Exception e) when (e is not OperationCanceledException) { verdict = new VerifiedState(0, $"verifier error: {e.Message.ReplaceLineEndings(" ")}"); }
        var judgement = new Judgement(verdict.Reward >= 1 ? Verdict.Yes : Verdict.No, verdict.Reason);
        return Enumerable.Repeat(judgement, samples).ToArray();
    }
}

/// <summary>
/// SPaR's actor and refiner for a step environment, played by the policy: a response is an episode (the text after
/// the initial state). A refinement is an edit of the failing response: it keeps the response up to an edit point
/// (drawn per refinement from the seed: after some whole steps and some words of the next step's action, never
/// nothing when there is something to keep) and the policy writes the rest from there, so it differs from the
/// original only after that point — the minimal edit SPaR's refiner aims for, also when a response is one step
/// (environment.max-steps = 1). With <paramref name="showCritique"/> the policy is prompted with the judge's critique
/// (<see cref="Feedback"/> before the state; the environment never reads it), as SPaR's refiner is; then the log-probs
/// it generated belong to that prompt, not to the pair's, so they are not kept (the learner re-scores the response).
/// Without it (the default for the character model, which cannot read a critique) the critique only travels with the
/// tree. Each response carries the policy's tokens step by step (<see cref="Response.Spans"/>; words kept from inside a
/// step are text without tokens). Keeps the steps of the responses it produced (one instance per search).
/// </summary>
public sealed class EpisodeRefiner(IEnvironment environment, IStepProposer proposer, int depthLimit, double temperature,
    IEnvironmentSteps? steps = null, bool showCritique = false) : IRefiner
{
    /// <summary>The text the refiner reads before the state when it is shown the critique.</summary>
    public static string Feedback(string critique) => $"Feedback on an earlier answer: {critique.ReplaceLineEndings(" ").Trim()}\n";

    readonly IEnvironmentSteps _apply = steps ?? new InlineEnvironmentSteps(environment);
    readonly Dictionary<string, IReadOnlyList<ResponseStep>> _responses = [];

    /// <summary>A piece of a response's text and the policy tokens that wrote it (none for words kept from the response it edits).</summary>
    sealed record Part(string Text, int[] TokenIds, float[] LogProbs);

    /// <summary>One step of a response: the action the policy wrote and the environment's text of it, in parts.</summary>
    sealed record ResponseStep(string Action, IReadOnlyList<Part> Parts);

    sealed record Start(string State, int Depth, IReadOnlyList<ResponseStep> Kept, string Prefix, string Context = "");

    public async Task<IReadOnlyList<Response>> SampleAsync(EnvTask task, int count, long seed, CancellationToken cancellationToken = default)
    {
        var initial = await _apply.InitialStateAsync(task, cancellationToken);
        return await PlayAsync(task, Enumerable.Repeat(new Start(initial, 0, [], ""), count).ToList(), seed, cancellationToken);
    }

    public async Task<IReadOnlyList<IReadOnlyList<Response>>> RefineAsync(EnvTask task, IReadOnlyList<RefineRequest> requests, CancellationToken cancellationToken = default)
    {
        var initial = await _apply.InitialStateAsync(task, cancellationToken);
        var starts = new List<Start>();
        foreach (var request in requests)
        {
            var known = _responses.TryGetValue(request.Response, out var r) ? r : [];
            var points = EditPoints(known);
            var random = new Random(unchecked((int)request.Seed));
            for (var i = 0; i < request.Count; i++)
            {
                var (keep, cut) = points[random.Next(points.Count)];
                var kept = known.Take(keep).ToList();
                starts.Add(new Start(initial + string.Concat(kept.SelectMany(s => s.Parts).Select(p => p.Text)), keep, kept, cut == 0 ? "" : known[keep].Action[..cut],
                    showCritique && request.Critique.Length > 0 ? Feedback(request.Critique) : ""));
            }
        }
        var played = await PlayAsync(task, starts, requests.Count == 0 ? 0 : Seeds.Mix(requests[0].Seed, requests.Count), cancellationToken);
        var answers = new List<IReadOnlyList<Response>>();
        var next = 0;
        foreach (var request in requests)
        {
            answers.Add(played.Skip(next).Take(request.Count).ToList());
            next += request.Count;
        }
        return answers;
    }

    /// <summary>
    /// Where an edit can start: (whole steps kept, characters kept of the next step's action, at a word start). Keeping
    /// nothing (a fresh sample) only when the response has nothing to keep.
    /// </summary>
    public static List<(int Keep, int Cut)> EditPoints(IReadOnlyList<string> actions)
    {
        var points = new List<(int, int)>();
        for (var j = 0; j < actions.Count; j++)
        {
            var action = actions[j];
            if (j > 0) points.Add((j, 0));
            for (var k = 1; k < action.Length; k++)
                if (action[k - 1] == ' ' && action[k] != ' ') points.Add((j, k));
        }
        return points.Count == 0 ? [(0, 0)] : points;
    }

    static List<(int Keep, int Cut)> EditPoints(IReadOnlyList<ResponseStep> steps) => EditPoints(steps.Select(s => s.Action).ToList());

    async Task<List<Response>> PlayAsync(EnvTask task, IReadOnlyList<Start> starts, long seed, CancellationToken ct)
    {
        var episodes = await Rollouts.PlayAsync(starts.Select(s => (s.State, s.Depth)).ToList(), depthLimit, temperature, seed,
            proposer.ProposeAsync, (batch, token) => _apply.StepAsync(task, batch, token), ct, starts.Select(s => s.Prefix).ToList(),
            starts.Select(s => s.Context).ToList());
        var responses = new List<Response>();
        for (var i = 0; i < starts.Count; i++)
        {
            var episode = episodes[i];
            var steps = starts[i].Kept.ToList();
            for (var k = 0; k < episode.Steps.Count; k++)
            {
                var (text, proposal) = (episode.Steps[k], episode.Proposals[k]);
                if (starts[i].Context.Length > 0) proposal = proposal with { LogProbs = [] }; // generated under another prompt
                var prefix = k == 0 ? starts[i].Prefix : "";
                // Kept words are text; the policy's continuation carries its tokens (the environment's text after it is unscored).
                Part[] parts = prefix.Length > 0 && text.StartsWith(prefix, StringComparison.Ordinal)
                    ? [new Part(prefix, [], []), new Part(text[prefix.Length..], proposal.TokenIds, proposal.LogProbs)]
                    : [new Part(text, proposal.TokenIds, proposal.LogProbs)];
                steps.Add(new ResponseStep(prefix + proposal.Action, parts));
            }
            var all = steps.SelectMany(s => s.Parts).ToList();
            var response = new Response(string.Concat(all.Select(p => p.Text)), [.. all.SelectMany(p => p.TokenIds)], [.. all.SelectMany(p => p.LogProbs)],
                episode.Tokens, [.. all.Select(p => new StepSpan(p.Text.Length, p.TokenIds.Length))]);
            _responses.TryAdd(response.Text, steps);
            responses.Add(response);
        }
        return responses;
    }
}

using SelfPlay.Core.Environments;

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
/// the initial state). A refinement keeps the first j steps of the failing episode (j drawn per refinement from the
/// seed, below the episode's length) and lets the policy play on from there, so it differs from the original only
/// from step j+1 on — the minimal edit SPaR's refiner aims for. The policy does not read the critique (a small
/// policy cannot); the judge's critique still travels with the tree. Refinements are not one contiguous policy
/// completion, so their nodes carry no token ids. Keeps the steps of the episodes it produced (one instance per search).
/// </summary>
public sealed class EpisodeRefiner(IEnvironment environment, IStepProposer proposer, int depthLimit, double temperature,
    IEnvironmentSteps? steps = null) : IRefiner
{
    readonly IEnvironmentSteps _apply = steps ?? new InlineEnvironmentSteps(environment);
    readonly Dictionary<string, IReadOnlyList<string>> _steps = [];

    public async Task<IReadOnlyList<Response>> SampleAsync(EnvTask task, int count, long seed, CancellationToken cancellationToken = default)
    {
        var initial = await _apply.InitialStateAsync(task, cancellationToken);
        return await PlayAsync(task, Enumerable.Repeat((initial, 0, (IReadOnlyList<string>)[]), count).ToList(), seed, cancellationToken);
    }

    public async Task<IReadOnlyList<IReadOnlyList<Response>>> RefineAsync(EnvTask task, IReadOnlyList<RefineRequest> requests, CancellationToken cancellationToken = default)
    {
        var initial = await _apply.InitialStateAsync(task, cancellationToken);
        var starts = new List<(string State, int Depth, IReadOnlyList<string> Kept)>();
        foreach (var request in requests)
        {
            var steps = _steps.TryGetValue(request.Response, out var known) ? known : [];
            var random = new Random(unchecked((int)request.Seed));
            for (var i = 0; i < request.Count; i++)
            {
                var keep = steps.Count == 0 ? 0 : random.Next(steps.Count);
                var kept = steps.Take(keep).ToList();
                starts.Add((initial + string.Concat(kept), keep, kept));
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

    async Task<List<Response>> PlayAsync(EnvTask task, IReadOnlyList<(string State, int Depth, IReadOnlyList<string> Kept)> starts, long seed, CancellationToken ct)
    {
        var episodes = await Rollouts.PlayAsync(starts.Select(s => (s.State, s.Depth)).ToList(), depthLimit, temperature, seed,
            proposer.ProposeAsync, (batch, token) => _apply.StepAsync(task, batch, token), ct);
        var responses = new List<Response>();
        for (var i = 0; i < starts.Count; i++)
        {
            var steps = starts[i].Kept.Concat(episodes[i].Steps).ToList();
            var text = string.Concat(steps);
            _steps.TryAdd(text, steps);
            responses.Add(new Response(text, [], [], episodes[i].Tokens));
        }
        return responses;
    }
}

using System.Diagnostics;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Search;

/// <summary>A proposal that survived duplicate merging, with what the environment made of it.</summary>
public readonly record struct Candidate(ProposedStep Step, StepOutcome Outcome);

/// <summary>
/// What every tree search shares: one tree under construction and its task, timed calls to the proposer, the critic
/// and the environment (the tree's <see cref="SearchStats"/>), duplicate merging on the text the environment writes,
/// node creation with provenance, and batched lock-step rollouts. Algorithms keep only their own rules.
/// </summary>
public sealed class SearchRun
{
    readonly IEnvironmentSteps _steps;
    readonly IStepProposer _proposer;
    readonly INodeEvaluator _evaluator;
    readonly Stopwatch _clock = Stopwatch.StartNew();
    readonly List<string?> _states = [];

    /// <summary>
    /// Starts a search of the task: its root is the environment's initial state, asked through
    /// <paramref name="steps"/> (default: <paramref name="environment"/> in this process). An environment that cannot
    /// start the task throws, and the task fails.
    /// </summary>
    public static async Task<SearchRun> StartAsync(string treeId, EnvTask task, string algorithm, IEnvironment environment, IStepProposer proposer,
        INodeEvaluator evaluator, int policyVersion, IEnvironmentSteps? steps = null, CancellationToken cancellationToken = default)
    {
        steps ??= new InlineEnvironmentSteps(environment);
        return new SearchRun(treeId, task, algorithm, environment.Name, await steps.InitialStateAsync(task, cancellationToken), proposer, evaluator,
            policyVersion, steps);
    }

    SearchRun(string treeId, EnvTask task, string algorithm, string environment, string initialState, IStepProposer proposer,
        INodeEvaluator evaluator, int policyVersion, IEnvironmentSteps steps)
    {
        _steps = steps;
        _proposer = proposer;
        _evaluator = evaluator;
        Task = task;
        PolicyVersion = policyVersion;
        Tree = PreferenceTree.Create(treeId, initialState);
        Tree.TaskId = task.Id;
        Tree.TaskInput = task.Input;
        Tree.Environment = environment;
        Tree.Algorithm = algorithm;
        Tree.PolicyVersion = policyVersion;
        Tree.Critic = evaluator.Name;
        Tree.CreatedAtUtc = DateTime.UtcNow;
        Tree.Root.PolicyVersion = policyVersion;
        _states.Add(Tree.Root.StepText);
    }

    public PreferenceTree Tree { get; }
    public EnvTask Task { get; }
    public int PolicyVersion { get; }
    public string CriticName => _evaluator.Name;
    public SearchStats Stats => Tree.Stats;
    public double ElapsedMs => _clock.Elapsed.TotalMilliseconds;

    /// <summary>The full text state at a node, cached (states are immutable once a node exists).</summary>
    public string StateOf(int index)
    {
        while (_states.Count < Tree.Nodes.Count) _states.Add(null);
        return _states[index] ??= StateOf(Tree.Nodes[index].Parent) + Tree.Nodes[index].StepText;
    }

    /// <summary>The search is over: record its wall time and hand out the tree.</summary>
    public PreferenceTree Finish()
    {
        Stats.WallMs = ElapsedMs;
        return Tree;
    }

    /// <summary>One batched proposer call; its time and generated tokens go to the stats.</summary>
    public async Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken ct)
    {
        if (requests.Count == 0) return [];
        var start = Stopwatch.GetTimestamp();
        var answers = await _proposer.ProposeAsync(requests, ct);
        Stats.ProposerMs += Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        Stats.ProposerCalls++;
        foreach (var list in answers)
            foreach (var step in list) Stats.GeneratedTokens += step.TokenIds.Length;
        return answers;
    }

    /// <summary>One batched critic call.</summary>
    public async Task<IReadOnlyList<double>> EvaluateAsync(IReadOnlyList<NodeToScore> nodes, CancellationToken ct)
    {
        if (nodes.Count == 0) return [];
        var start = Stopwatch.GetTimestamp();
        var values = await _evaluator.EvaluateAsync(Task, nodes, ct);
        Stats.EvaluatorMs += Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        Stats.EvaluatorCalls++;
        if (values.Count != nodes.Count) throw new InvalidOperationException($"critic '{_evaluator.Name}' returned {values.Count} values for {nodes.Count} nodes");
        return values;
    }

    /// <summary>
    /// Applies steps in one batched environment call (in order); a step that throws or hangs ends its branch with
    /// reward 0, never the search.
    /// </summary>
    public async Task<IReadOnlyList<StepOutcome>> ApplyAsync(IReadOnlyList<EnvStep> steps, CancellationToken ct)
    {
        if (steps.Count == 0) return [];
        var start = Stopwatch.GetTimestamp();
        try
        {
            var outcomes = await _steps.StepAsync(Task, steps, ct);
            if (outcomes.Count != steps.Count) throw new InvalidOperationException($"the environment returned {outcomes.Count} outcomes for {steps.Count} steps");
            return outcomes;
        }
        finally { Stats.EnvironmentMs += Stopwatch.GetElapsedTime(start).TotalMilliseconds; }
    }

    /// <summary>
    /// Each state's proposals applied to it (all states in one batched environment call), duplicates merged into the
    /// first (same resulting text = same step, however it was spelled), at most <paramref name="breadthLimit"/> kept
    /// per state (0 = all; every proposal is applied, those past the limit are dropped, so the batch needs no round trip
    /// per proposal).
    /// </summary>
    public async Task<List<List<Candidate>>> DistinctAsync(IReadOnlyList<(string State, IReadOnlyList<ProposedStep> Proposals)> expansions,
        int breadthLimit, CancellationToken ct)
    {
        var steps = expansions.SelectMany(e => e.Proposals.Select(p => new EnvStep(e.State, p.Action))).ToList();
        var outcomes = await ApplyAsync(steps, ct);
        var result = new List<List<Candidate>>();
        var next = 0;
        foreach (var (_, proposals) in expansions)
        {
            var seen = new HashSet<string>();
            var kept = new List<Candidate>();
            foreach (var step in proposals)
            {
                var outcome = outcomes[next++];
                if (breadthLimit > 0 && kept.Count >= breadthLimit) continue;
                if (seen.Add(outcome.Appended)) kept.Add(new Candidate(step, outcome));
            }
            result.Add(kept);
        }
        return result;
    }

    /// <summary>Scores candidates of one or more parents in one critic call.</summary>
    public Task<IReadOnlyList<double>> EvaluateAsync(IReadOnlyList<(int Parent, Candidate Candidate)> candidates, CancellationToken ct) =>
        EvaluateAsync(candidates.Select(c =>
        {
            var state = StateOf(c.Parent);
            return new NodeToScore(state, state + c.Candidate.Outcome.Appended, c.Candidate.Outcome);
        }).ToList(), ct);

    /// <summary>Adds a child for a candidate; the critic's value is its Value (and its terminal reward when terminal).</summary>
    public TreeNode AddChild(int parent, Candidate candidate, double value, double prior, double wallMs)
    {
        var (step, outcome) = candidate;
        return Tree.AddChild(parent, new TreeNode
        {
            Action = step.Action,
            StepText = outcome.Appended,
            TokenIds = step.TokenIds,
            LogProbs = step.LogProbs,
            Prior = prior,
            IsTerminal = outcome.IsTerminal,
            TerminalReward = outcome.IsTerminal ? value : null,
            TerminalReason = outcome.IsTerminal ? outcome.Reason : null,
            Value = value,
            CriticScores = { [CriticName] = value },
            Critic = CriticName,
            PolicyVersion = PolicyVersion,
            CreatedAtMs = ElapsedMs,
            WallMs = wallMs,
            GeneratedTokens = step.TokenIds.Length,
        });
    }

    /// <summary>Marks a node where the policy proposed nothing usable: a terminal with reward 0.</summary>
    public static void MarkDeadEnd(TreeNode node)
    {
        node.IsTerminal = true;
        node.TerminalReward = 0;
        node.TerminalReason = "the policy proposed no step";
    }

    /// <summary>
    /// Lock-step rollouts from the given states (one batched proposer call per step, see <see cref="Rollouts"/>); the
    /// critic scores the final states in one call. Returns each rollout's value (0 where it was cut off at the depth
    /// limit or the policy proposed nothing) and the tokens it generated.
    /// </summary>
    public async Task<(double[] Values, int[] Tokens)> RolloutAsync(IReadOnlyList<(string State, int Depth)> starts, int depthLimit,
        double temperature, long seed, CancellationToken ct)
    {
        var episodes = await Rollouts.PlayAsync(starts, depthLimit, temperature, seed, ProposeAsync, ApplyAsync, ct);
        var ended = episodes.Select((e, i) => (e, i)).Where(x => x.e.Last is not null).ToList();
        var scored = await EvaluateAsync(ended.Select(x => x.e.Last!).ToList(), ct);
        var values = new double[starts.Count];
        for (var j = 0; j < ended.Count; j++) values[ended[j].i] = scored[j];
        return (values, episodes.Select(e => e.Tokens).ToArray());
    }
}

/// <summary>
/// An episode played on from a start state: its final state, the steps it appended (each the environment's text) with
/// the policy's proposal behind each, the last step when terminal, and the tokens it generated.
/// </summary>
public sealed record Episode(string State, IReadOnlyList<string> Steps, IReadOnlyList<ProposedStep> Proposals, NodeToScore? Last, int Tokens);

public static class Rollouts
{
    /// <summary>
    /// Plays every start state on with one sampled step at a time until a terminal step or <paramref name="depthLimit"/>;
    /// all unfinished episodes share one batched proposer call per step. Seeds depend only on (seed, episode, step).
    /// With <paramref name="actionPrefixes"/>, an episode's first step begins with that text: the policy continues it
    /// (proposing from the state followed by the prefix) and the step applied is the prefix plus its continuation.
    /// With <paramref name="contexts"/>, the policy reads that text before an episode's state (the environment never sees it).
    /// </summary>
    public static async Task<Episode[]> PlayAsync(IReadOnlyList<(string State, int Depth)> starts, int depthLimit, double temperature, long seed,
        Func<IReadOnlyList<ProposalRequest>, CancellationToken, Task<IReadOnlyList<IReadOnlyList<ProposedStep>>>> propose,
        Func<IReadOnlyList<EnvStep>, CancellationToken, Task<IReadOnlyList<StepOutcome>>> apply, CancellationToken ct,
        IReadOnlyList<string>? actionPrefixes = null, IReadOnlyList<string>? contexts = null)
    {
        var states = starts.Select(s => s.State).ToArray();
        var depths = starts.Select(s => s.Depth).ToArray();
        var steps = starts.Select(_ => new List<string>()).ToArray();
        var proposals = starts.Select(_ => new List<ProposedStep>()).ToArray();
        var last = new NodeToScore?[starts.Count];
        var tokens = new int[starts.Count];
        string Prefix(int i, int round) => round == 0 && actionPrefixes is not null ? actionPrefixes[i] : "";
        var open = Enumerable.Range(0, starts.Count).Where(i => depths[i] < depthLimit).ToList();
        for (var round = 0; open.Count > 0; round++)
        {
            var answers = await propose(open.Select(i => new ProposalRequest((contexts?[i] ?? "") + states[i] + Prefix(i, round), 1, temperature, Seeds.Mix(seed, i, round))).ToList(), ct);
            // Every open episode that got a step applies it; all of them in one batched environment call.
            var stepping = Enumerable.Range(0, open.Count).Where(j => answers[j].Count > 0).ToList(); // nothing proposed: stops unfinished
            var outcomes = await apply(stepping.Select(j => new EnvStep(states[open[j]], Prefix(open[j], round) + answers[j][0].Action)).ToList(), ct);
            var next = new List<int>();
            for (var k = 0; k < stepping.Count; k++)
            {
                var i = open[stepping[k]];
                var step = answers[stepping[k]][0];
                tokens[i] += step.TokenIds.Length;
                var outcome = outcomes[k];
                var before = states[i];
                states[i] += outcome.Appended;
                steps[i].Add(outcome.Appended);
                proposals[i].Add(step);
                depths[i]++;
                if (outcome.IsTerminal) last[i] = new NodeToScore(before, states[i], outcome);
                else if (depths[i] < depthLimit) next.Add(i);
            }
            open = next;
        }
        return Enumerable.Range(0, starts.Count).Select(i => new Episode(states[i], steps[i], proposals[i], last[i], tokens[i])).ToArray();
    }
}

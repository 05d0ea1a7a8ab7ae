using SelfPlay.Core.Environments;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Search;

public enum Verdict { Unparsable = -1, No = 0, Yes = 1 }

/// <summary>One judge sample: whether the response follows the task, and why.</summary>
public sealed record Judgement(Verdict Verdict, string Critique);

/// <summary>
/// A complete response (an actor sample or a refinement) with the policy's tokens and their log-probs; for a response of
/// several steps (or with kept text), <paramref name="Spans"/> splits text and tokens into its steps (null: one step).
/// </summary>
public sealed record Response(string Text, int[] TokenIds, float[] LogProbs, int GeneratedTokens, IReadOnlyList<StepSpan>? Spans = null);

/// <summary>SPaR's judge: <c>samples</c> independent judgements of one response.</summary>
public interface IJudge
{
    string Name { get; }
    Task<IReadOnlyList<Judgement>> JudgeAsync(EnvTask task, string response, int samples, long seed, CancellationToken cancellationToken = default);
}

/// <summary>SPaR's actor (samples responses) and refiner (rewrites a failing response given its critique).</summary>
public interface IRefiner
{
    Task<IReadOnlyList<Response>> SampleAsync(EnvTask task, int count, long seed, CancellationToken cancellationToken = default);
    /// <summary>Batched: one list of <c>Count</c> refinements per request.</summary>
    Task<IReadOnlyList<IReadOnlyList<Response>>> RefineAsync(EnvTask task, IReadOnlyList<RefineRequest> requests, CancellationToken cancellationToken = default);
}

public sealed record RefineRequest(string Response, string Critique, int Count, long Seed);

/// <summary>The tally of one round of judge samples (algorithms.md §2.2): V = #Yes / (#Yes + #No); unparsable votes do not count.</summary>
public sealed record Vote(int Yes, int No, int Unparsable, string Critique)
{
    public double Value => Yes + No == 0 ? 0 : (double)Yes / (Yes + No);
    public bool IsTie => Yes == No;
    public Verdict Majority => Yes > No ? Verdict.Yes : Verdict.No;

    /// <summary>Counts the votes; the critique is the first one that agrees with the majority.</summary>
    public static Vote Tally(IReadOnlyList<Judgement> judgements)
    {
        int yes = judgements.Count(j => j.Verdict == Verdict.Yes), no = judgements.Count(j => j.Verdict == Verdict.No);
        var majority = yes > no ? Verdict.Yes : Verdict.No;
        var critique = yes == no ? "" : judgements.First(j => j.Verdict == majority).Critique;
        return new Vote(yes, no, judgements.Count - yes - no, critique);
    }
}

public enum SparMode { Bfs, Dfs }
public enum SparSelection { Greedy, Sample }

public sealed record SparOptions(
    int Branch = 3,
    int SelectBranch = 2,
    int MaxDepth = 3,
    double EndGate = 0.5,
    int Budget = 1000,
    SparMode Mode = SparMode.Bfs,
    SparSelection Selection = SparSelection.Greedy,
    int JudgeSamples = 5,
    // A tied vote is judged again up to this many times, then the response is dropped.
    int JudgeResamples = 3,
    // Actor samples drawn to find a failing response to refine.
    int ActorSamples = 4,
    long Seed = 0,
    int PolicyVersion = 0);

/// <summary>
/// SPaR's tree-search refinement (algorithms.md §2.2): the actor's responses are judged (n votes, majority; ties
/// judged again, then dropped), one failing response becomes the search root, and refinements of it are searched
/// breadth-first (every frontier node refined <c>branch</c> times per depth, the <c>select_branch</c> best kept,
/// greedily or value-proportionally) or depth-first, until the first refinement whose vote value exceeds
/// <c>end_gate</c> (strict), <c>max_depth</c>, or the refinement <c>budget</c>. The judge is cached by response text.
/// Tree: node 0 is the prompt; its children are the actor's responses; a refinement is a child of the response it
/// refines. Each response node is complete (terminal) with Action = StepText = the whole response (its tokens, split by Spans), Value = Q = V = the vote value,
/// TerminalReward = the vote value, Visits = counted votes, Critique = the majority critique; the search's answer
/// (the first passing refinement, else the best-valued response) is marked <see cref="TreeNode.Committed"/>.
/// </summary>
public sealed class SparSearch(IEnvironment environment, IRefiner refiner, IJudge judge, SparOptions options, IEnvironmentSteps? steps = null) : ITreeSearch
{
    public string Algorithm => "spar";

    sealed class NoProposals : IStepProposer
    {
        public Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("SPaR proposes through its refiner");
    }

    sealed class JudgeName(string name) : INodeEvaluator
    {
        public string Name => name;
        public Task<IReadOnlyList<double>> EvaluateAsync(EnvTask task, IReadOnlyList<NodeToScore> nodes, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("SPaR scores through its judge");
    }

    public async Task<PreferenceTree> SearchAsync(string treeId, EnvTask task, CancellationToken cancellationToken = default)
    {
        var run = await SearchRun.StartAsync(treeId, task, Algorithm, environment, new NoProposals(), new JudgeName(judge.Name), options.PolicyVersion, steps,
            cancellationToken);
        var tree = run.Tree;
        var cache = new Dictionary<string, Vote?>();
        var budget = options.Budget;

        async Task<Vote?> JudgeAsync(string response)
        {
            if (cache.TryGetValue(response, out var known)) return known;
            Vote? vote = null;
            for (var attempt = 0; attempt <= options.JudgeResamples; attempt++)
            {
                var start = run.ElapsedMs;
                var judgements = await judge.JudgeAsync(task, response, options.JudgeSamples, Seeds.Mix(options.Seed, Seeds.Of(response), attempt), cancellationToken);
                run.Stats.EvaluatorMs += run.ElapsedMs - start;
                run.Stats.EvaluatorCalls++;
                var tally = Vote.Tally(judgements);
                if (!tally.IsTie) { vote = tally; break; }
            }
            return cache[response] = vote;
        }

        async Task<List<TreeNode>> AddJudgedAsync(TreeNode parent, IReadOnlyList<Response> responses)
        {
            var added = new List<TreeNode>();
            foreach (var response in responses)
            {
                // Refinements identical to a sibling are one node; a vote still tied after resampling is dropped.
                if (parent.Children.Any(c => tree.Nodes[c].Action == response.Text)) continue;
                if (await JudgeAsync(response.Text) is not { } vote) continue;
                added.Add(tree.AddChild(parent.Index, new TreeNode
                {
                    Action = response.Text,
                    StepText = response.Text,
                    Spans = [.. response.Spans ?? []],
                    TokenIds = response.TokenIds,
                    LogProbs = response.LogProbs,
                    IsTerminal = true,
                    TerminalReward = vote.Value,
                    TerminalReason = vote.Majority == Verdict.Yes ? "judged acceptable" : "judged failing",
                    Critique = vote.Critique,
                    Value = vote.Value,
                    Q = vote.Value,
                    V = vote.Value,
                    Visits = vote.Yes + vote.No,
                    ValueSum = vote.Yes,
                    CriticScores = { [judge.Name] = vote.Value },
                    Critic = judge.Name,
                    PolicyVersion = options.PolicyVersion,
                    CreatedAtMs = run.ElapsedMs,
                    GeneratedTokens = response.GeneratedTokens,
                }));
                run.Stats.GeneratedTokens += response.GeneratedTokens;
            }
            return added;
        }

        async Task<List<TreeNode>> RefineAsync(IReadOnlyList<TreeNode> parents)
        {
            var requests = new List<(TreeNode Parent, RefineRequest Request)>();
            foreach (var p in parents)
            {
                var count = Math.Min(options.Branch, budget);
                if (count <= 0) break;
                budget -= count;
                requests.Add((p, new RefineRequest(p.Action, p.Critique ?? "", count, Seeds.Mix(options.Seed, p.Index))));
            }
            if (requests.Count == 0) return [];
            var start = run.ElapsedMs;
            var answers = await refiner.RefineAsync(task, requests.Select(r => r.Request).ToList(), cancellationToken);
            run.Stats.ProposerMs += run.ElapsedMs - start;
            run.Stats.ProposerCalls++;
            var children = new List<TreeNode>();
            for (var i = 0; i < requests.Count; i++) children.AddRange(await AddJudgedAsync(requests[i].Parent, answers[i]));
            return children;
        }

        bool Passes(TreeNode n) => n.Value > options.EndGate; // strict, as SPaR's end_gate

        List<TreeNode> Select(List<TreeNode> candidates, long seed)
        {
            if (options.Selection == SparSelection.Greedy)
                return candidates.OrderByDescending(c => c.Value).ThenBy(c => c.Index).Take(options.SelectBranch).ToList();
            // Value-proportional sampling without replacement (uniform among zero values).
            var random = new Random(unchecked((int)seed));
            var pool = candidates.ToList();
            var chosen = new List<TreeNode>();
            while (chosen.Count < options.SelectBranch && pool.Count > 0)
            {
                var total = pool.Sum(c => c.Value);
                var x = random.NextDouble() * (total > 0 ? total : pool.Count);
                var k = 0;
                for (var acc = 0.0; k < pool.Count - 1; k++)
                {
                    acc += total > 0 ? pool[k].Value : 1;
                    if (x < acc) break;
                }
                chosen.Add(pool[k]);
                pool.RemoveAt(k);
            }
            return chosen;
        }

        async Task<TreeNode?> DfsAsync(TreeNode node, int depth)
        {
            if (depth >= options.MaxDepth) return null;
            var children = await RefineAsync([node]);
            var passing = children.Where(Passes).OrderByDescending(c => c.Value).ThenBy(c => c.Index).FirstOrDefault();
            if (passing is not null) return passing;
            foreach (var child in Select(children, Seeds.Mix(options.Seed, node.Index, 1)))
                if (await DfsAsync(child, depth + 1) is { } found) return found;
            return null;
        }

        // 1. Actor samples, judged; the first failing one is refined.
        var start = run.ElapsedMs;
        var samples = await refiner.SampleAsync(task, options.ActorSamples, Seeds.Mix(options.Seed, 0), cancellationToken);
        run.Stats.ProposerMs += run.ElapsedMs - start;
        run.Stats.ProposerCalls++;
        var responses = await AddJudgedAsync(tree.Root, samples);
        TreeNode? answer = null;
        if (responses.FirstOrDefault(r => r.Value < 0.5) is { } failing)
        {
            // 2. Tree-search refinement.
            if (options.Mode == SparMode.Dfs) answer = await DfsAsync(failing, 0);
            else
            {
                var frontier = new List<TreeNode> { failing };
                for (var depth = 0; depth < options.MaxDepth && frontier.Count > 0; depth++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var candidates = await RefineAsync(frontier);
                    if (candidates.Count == 0) break;
                    var best = candidates.OrderByDescending(c => c.Value).ThenBy(c => c.Index).First();
                    if (Passes(best)) { answer = best; break; }
                    frontier = Select(candidates, Seeds.Mix(options.Seed, depth, 2));
                }
            }
        }
        answer ??= tree.Nodes.Skip(1).OrderByDescending(n => n.Value).ThenBy(n => n.Index).FirstOrDefault();
        if (answer is not null) answer.Committed = true;
        return run.Finish();
    }
}

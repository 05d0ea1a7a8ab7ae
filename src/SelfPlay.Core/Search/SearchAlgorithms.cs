using System.Globalization;
using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;

namespace SelfPlay.Core.Search;

/// <summary>The search.algorithm setting: names, validation, and the one place that builds a search from the config.</summary>
public static class SearchAlgorithms
{
    public static readonly IReadOnlyList<string> Names = ["mcts", "best-first", "spar", "beam", "dfsdt", "tree-rollout"];

    /// <summary>
    /// A search for one tree. <paramref name="depthLimit"/> is the environment's episode length (steps);
    /// <paramref name="seed"/> the task's seed. SPaR on a step environment uses the verifier as judge and the policy as
    /// actor and refiner (<see cref="VerifierJudge"/>, <see cref="EpisodeRefiner"/>). <paramref name="steps"/> applies
    /// the steps (default: in this process, through <paramref name="environment"/>); <paramref name="judge"/> is SPaR's
    /// judge (default: the verifier).
    /// </summary>
    public static ITreeSearch Create(SearchConfig config, IEnvironment environment, IStepProposer proposer, INodeEvaluator evaluator,
        int depthLimit, int policyVersion, long seed, IEnvironmentSteps? steps = null, IJudge? judge = null)
    {
        var c = config;
        return c.Algorithm switch
        {
            "mcts" => new Mcts(environment, proposer, evaluator, MctsOptions(c, depthLimit, policyVersion, seed), steps: steps),
            "best-first" => new BestFirstSearch(environment, proposer, evaluator, new BestFirstOptions(c.Expansions,
                (c.BestFirst ?? new()).LookAhead, (c.BestFirst ?? new()).MaxExpansions, depthLimit, c.Temperature, c.LengthPenalty, seed, policyVersion), steps),
            "beam" => new BeamSearch(environment, proposer, evaluator, new BeamOptions(c.Expansions, (c.Beam ?? new()).Width, depthLimit,
                c.Temperature, c.LengthPenalty, seed, policyVersion), steps),
            "dfsdt" => new DfsdtSearch(environment, proposer, evaluator, new DfsdtOptions(c.Expansions, (c.Dfsdt ?? new()).MaxExpansions, depthLimit,
                c.Temperature, c.LengthPenalty, seed, policyVersion), steps),
            "tree-rollout" => new TreeRolloutSearch(environment, proposer, evaluator, TreeRolloutOptions(c, depthLimit, policyVersion, seed), steps),
            "spar" => new SparSearch(environment, new EpisodeRefiner(environment, proposer, depthLimit, c.Temperature, steps,
                (c.Spar ?? new()).RefinerFeedback == "critique"), judge ?? new VerifierJudge(steps ?? new InlineEnvironmentSteps(environment)),
                SparOptions(c, policyVersion, seed), steps),
            _ => throw new ArgumentException($"unknown search algorithm '{c.Algorithm}' (known: {string.Join(", ", Names)})"),
        };
    }

    public static MctsOptions MctsOptions(SearchConfig c, int depthLimit, int policyVersion, long seed)
    {
        var m = c.Mcts ?? new MctsConfig();
        return new MctsOptions(
            Simulations: c.Simulations, Expansions: c.Expansions, LengthPenalty: c.LengthPenalty, DepthLimit: depthLimit,
            Temperature: c.Temperature, Seed: seed, PolicyVersion: policyVersion,
            Selection: m.Selection == "ucb1" ? new Ucb1Selection(c.CPuct) : new PuctSelection(c.CPuct),
            Backup: m.Value == "agent-q" ? new AgentQBackup(m.AgentQAlpha)
                : c.Backup == "mean-value" ? MeanValueBackup.Instance : VisitWeightedBackup.Instance,
            Value: m.Value switch
            {
                "mcts-dpo" => OutcomeSelfEvaluationValue.Instance,
                "signed-outcome" => SignedOutcomeValue.Instance,
                "agent-q" => CriticRankValue.Instance,
                _ => CriticValue.Instance,
            },
            RootExpansions: m.RootExpansions, BreadthLimit: m.BreadthLimit, RootSimulationFactor: m.RootSimulationFactor,
            CommitAndReuse: m.CommitAndReuse, ParallelSimulations: m.ParallelSimulations, VirtualLoss: m.VirtualLoss);
    }

    static TreeRolloutOptions TreeRolloutOptions(SearchConfig c, int depthLimit, int policyVersion, long seed)
    {
        var t = c.TreeRollout ?? new TreeRolloutConfig();
        return new TreeRolloutOptions(t.BranchFactor, ParseDepths(t.BranchDepths), t.BranchEvery, t.MaxWidth, depthLimit, c.Temperature,
            c.LengthPenalty, seed, policyVersion);
    }

    static SparOptions SparOptions(SearchConfig c, int policyVersion, long seed)
    {
        var s = c.Spar ?? new SparConfig();
        return new SparOptions(s.Branch, s.SelectBranch, s.MaxDepth, s.EndGate, s.Budget, s.Mode == "dfs" ? SparMode.Dfs : SparMode.Bfs,
            s.Selection == "sample" ? SparSelection.Sample : SparSelection.Greedy, s.JudgeSamples, s.JudgeResamples, s.ActorSamples, seed, policyVersion);
    }

    /// <summary>"0,3,6" → [0, 3, 6]; null when the text is not a list of non-negative integers.</summary>
    public static IReadOnlyList<int>? ParseDepths(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var depths = new List<int>();
        foreach (var p in parts)
        {
            if (!int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var d)) return null;
            depths.Add(d);
        }
        return depths.Count == 0 ? null : depths;
    }

    /// <summary>The first problem with the search settings as a one-line message (key and value), or null.</summary>
    public static string? Validate(SearchConfig c)
    {
        if (!Names.Contains(c.Algorithm)) return $"selfplay.search.algorithm must be one of {string.Join(", ", Names)}, got '{c.Algorithm}'";
        var m = c.Mcts ?? new MctsConfig();
        var b = c.BestFirst ?? new BestFirstConfig();
        var s = c.Spar ?? new SparConfig();
        var t = c.TreeRollout ?? new TreeRolloutConfig();
        (bool Ok, string Message)[] checks =
        [
            (m.Selection is "puct" or "ucb1", $"selfplay.search.mcts.selection must be puct or ucb1, got '{m.Selection}'"),
            (m.Value is "critic" or "mcts-dpo" or "signed-outcome" or "agent-q", $"selfplay.search.mcts.value must be critic, mcts-dpo, signed-outcome or agent-q, got '{m.Value}'"),
            // Its confidence term needs the policy's self-evaluation, which no critic provides yet: it would always be 0.
            (m.Value != "mcts-dpo", "selfplay.search.mcts.value = mcts-dpo needs a self-evaluating critic, which none provides yet (its confidence term would always be 0); use critic, signed-outcome or agent-q"),
            (m.AgentQAlpha is >= 0 and <= 1, $"selfplay.search.mcts.agent-q-alpha must be in [0, 1], got {m.AgentQAlpha}"),
            (m.RootExpansions >= 0 && m.BreadthLimit >= 0, "selfplay.search.mcts.root-expansions and breadth-limit must be non-negative (0 = off)"),
            (m.RootSimulationFactor >= 1 && m.ParallelSimulations >= 1, "selfplay.search.mcts.root-simulation-factor and parallel-simulations must be at least 1"),
            (m.VirtualLoss >= 0, "selfplay.search.mcts.virtual-loss must be non-negative"),
            (b.LookAhead >= 1 && b.MaxExpansions >= 1, "selfplay.search.best-first.look-ahead and max-expansions must be at least 1"),
            ((c.Beam ?? new()).Width >= 1, "selfplay.search.beam.width must be at least 1"),
            ((c.Dfsdt ?? new()).MaxExpansions >= 1, "selfplay.search.dfsdt.max-expansions must be at least 1"),
            (s.Mode is "bfs" or "dfs", $"selfplay.search.spar.mode must be bfs or dfs, got '{s.Mode}'"),
            (s.Selection is "greedy" or "sample", $"selfplay.search.spar.selection must be greedy or sample, got '{s.Selection}'"),
            (s.Branch >= 1 && s.SelectBranch >= 1 && s.MaxDepth >= 1 && s.Budget >= 1 && s.JudgeSamples >= 1 && s.ActorSamples >= 1 && s.JudgeResamples >= 0,
                "selfplay.search.spar: branch, select-branch, max-depth, budget, judge-samples and actor-samples must be at least 1, judge-resamples non-negative"),
            (c.Critic is "verifier" or StepScoreEvaluator.CriticName or "llm" || Critics.CriticTargets.IsTrained(c.Critic),
                $"selfplay.search.critic must be verifier, environment, llm, value or prm, got '{c.Critic}'"),
            (s.Judge is "verifier" or "llm", $"selfplay.search.spar.judge must be verifier or llm, got '{s.Judge}'"),
            (s.RefinerFeedback is "critique" or "none", $"selfplay.search.spar.refiner-feedback must be auto, critique or none, got '{s.RefinerFeedback}'"),
            (s.EndGate is >= 0 and < 1, $"selfplay.search.spar.end-gate must be in [0, 1), got {s.EndGate}"),
            (t.BranchFactor >= 1 && t.MaxWidth >= 1 && t.BranchEvery >= 0, "selfplay.search.tree-rollout: branch-factor and max-width must be at least 1, branch-every non-negative"),
            (t.BranchEvery > 0 || ParseDepths(t.BranchDepths) is not null, $"selfplay.search.tree-rollout.branch-depths must be comma-separated depths like \"0,1\", got '{t.BranchDepths}'"),
        ];
        return checks.FirstOrDefault(x => !x.Ok).Message;
    }
}

using SelfPlay.Core.Config;

namespace SelfPlay.Actors.Configuration;

/// <summary>Reads the per-algorithm search settings (search.mcts, search.best-first, ...) into the search config.</summary>
internal static class SearchSettingsReader
{
    public static SearchConfig Read(SearchConfig search, Func<string, string> s, Func<string, int> i, Func<string, double> d, Func<string, bool> b) =>
        search with
        {
            Mcts = new MctsConfig(Selection: s("search.mcts.selection"), Value: s("search.mcts.value"), AgentQAlpha: d("search.mcts.agent-q-alpha"), RootExpansions: i("search.mcts.root-expansions"),
                BreadthLimit: i("search.mcts.breadth-limit"), RootSimulationFactor: i("search.mcts.root-simulation-factor"), CommitAndReuse: b("search.mcts.commit-and-reuse"),
                ParallelSimulations: i("search.mcts.parallel-simulations"), VirtualLoss: d("search.mcts.virtual-loss")),
            BestFirst = new BestFirstConfig(LookAhead: i("search.best-first.look-ahead"), MaxExpansions: i("search.best-first.max-expansions")),
            Beam = new BeamConfig(Width: i("search.beam.width")),
            Dfsdt = new DfsdtConfig(MaxExpansions: i("search.dfsdt.max-expansions")),
            Spar = new SparConfig(Mode: s("search.spar.mode"), Branch: i("search.spar.branch"), SelectBranch: i("search.spar.select-branch"), MaxDepth: i("search.spar.max-depth"),
                EndGate: d("search.spar.end-gate"), Budget: i("search.spar.budget"), Selection: s("search.spar.selection"), JudgeSamples: i("search.spar.judge-samples"),
                JudgeResamples: i("search.spar.judge-resamples"), ActorSamples: i("search.spar.actor-samples"), Judge: s("search.spar.judge"),
                // auto: a pretrained policy reads the critique, the character model trained from scratch cannot.
                RefinerFeedback: s("search.spar.refiner-feedback") is "auto" ? (s("policy.checkpoint") == "" ? "none" : "critique") : s("search.spar.refiner-feedback")),
            TreeRollout = new TreeRolloutConfig(BranchFactor: i("search.tree-rollout.branch-factor"), BranchDepths: s("search.tree-rollout.branch-depths"),
                BranchEvery: i("search.tree-rollout.branch-every"), MaxWidth: i("search.tree-rollout.max-width")),
            Critic = s("search.critic"),
        };
}

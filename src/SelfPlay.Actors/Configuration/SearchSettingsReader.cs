using SelfPlay.Core.Config;

namespace SelfPlay.Actors.Configuration;

/// <summary>Reads the per-algorithm search settings (search.mcts, search.best-first, ...) into the search config.</summary>
internal static class SearchSettingsReader
{
    public static SearchConfig Read(SearchConfig search, Func<string, string> s, Func<string, int> i, Func<string, double> d, Func<string, bool> b) =>
        search with
        {
            Mcts = new MctsConfig(s("search.mcts.selection"), s("search.mcts.value"), d("search.mcts.agent-q-alpha"), i("search.mcts.root-expansions"),
                i("search.mcts.breadth-limit"), i("search.mcts.root-simulation-factor"), b("search.mcts.commit-and-reuse"),
                i("search.mcts.parallel-simulations"), d("search.mcts.virtual-loss")),
            BestFirst = new BestFirstConfig(i("search.best-first.look-ahead"), i("search.best-first.max-expansions")),
            Beam = new BeamConfig(i("search.beam.width")),
            Dfsdt = new DfsdtConfig(i("search.dfsdt.max-expansions")),
            Spar = new SparConfig(s("search.spar.mode"), i("search.spar.branch"), i("search.spar.select-branch"), i("search.spar.max-depth"),
                d("search.spar.end-gate"), i("search.spar.budget"), s("search.spar.selection"), i("search.spar.judge-samples"),
                i("search.spar.judge-resamples"), i("search.spar.actor-samples"), s("search.spar.judge"),
                // auto: a pretrained policy reads the critique, the character model trained from scratch cannot.
                s("search.spar.refiner-feedback") is "auto" ? (s("policy.checkpoint") == "" ? "none" : "critique") : s("search.spar.refiner-feedback")),
            TreeRollout = new TreeRolloutConfig(i("search.tree-rollout.branch-factor"), s("search.tree-rollout.branch-depths"),
                i("search.tree-rollout.branch-every"), i("search.tree-rollout.max-width")),
            Critic = s("search.critic"),
        };
}

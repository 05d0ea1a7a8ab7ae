using System.Text.Json;
using Akka.Actor;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Config;

namespace SelfPlay.Integration.Tests;

/// <summary>
/// A Game-of-24 warm-up policy good enough that searches find preferences on any of the training puzzles: a 64-wide
/// two-layer model after 24 epochs on half the puzzles' traces plays valid steps and often 24 (from 8 trees: 3-5
/// solved, 12 mcts-dpo pairs, 5 DFSDT success-path pairs, 15 tree-plv pairs). After 8 epochs it solved 0 of 8 on
/// another machine (float sums in another order), so success-path and tree-plv found no pairs and TreeRPO no
/// advantage; a 32-wide one-layer model after one epoch wrote almost only invalid steps (0 pairs from 16 trees).
/// Trained once (about a minute on 2 shared cores) for every algorithm's campaign.
/// </summary>
public sealed class Game24Warmup : IAsyncLifetime
{
    public static readonly string[] Model =
    [
        "--set", "model.hidden-size=64", "--set", "model.intermediate-size=176", "--set", "model.layers=2", "--set", "model.heads=4",
        "--set", "model.kv-heads=4",
        // What game24-quick.conf had before it trained its own two-layer warm-up on 32 puzzles: these campaigns were
        // sized on every training puzzle, 6 simulations and 32-trace warm-up batches.
        "--set", "environment.train-tasks=2000", "--set", "search.simulations=6", "--set", "warmup.batch-size=32",
    ];

    public string RunDir { get; } = Path.Combine(Path.GetTempPath(), "selfplay-warmup-" + Guid.NewGuid().ToString("N"));
    public string Checkpoint => Path.Combine(RunDir, "checkpoints", "v0");

    public async Task InitializeAsync()
    {
        // Up to 15 minutes: about 50 s alone, but it starts while the other test classes load both cores (over 5 minutes
        // in a full run of the suite on this machine).
        var result = await CliRunner.RunAsync(TimeSpan.FromMinutes(15), ["run", "--config", Path.Combine(CliRunner.RepoRoot, "hocon/campaigns/game24-quick.conf"), .. Model,
            "--set", "warmup.share=0.5", "--set", "warmup.traces-per-puzzle=2", "--set", "warmup.epochs=24", "--set", "warmup.learning-rate=0.006",
            "--set", "iterations.count=0", "--set", "eval.greedy=false", "--run-dir", RunDir]);
        Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
    }

    public Task DisposeAsync()
    {
        try { Directory.Delete(RunDir, true); } catch (IOException) { }
        return Task.CompletedTask;
    }
}

/// <summary>The campaign tests that start from the shared warm-up: it is trained once for all of them.</summary>
[CollectionDefinition(Name)]
public sealed class Game24WarmupCollection : ICollectionFixture<Game24Warmup>
{
    public const string Name = "game24 warm-up";
}

/// <summary>
/// Every search.algorithm with its extractor and loss in a Game-of-24 campaign through the real CLI, from one shared
/// warm-up (<see cref="Game24Warmup"/>): 8 trees, small per-algorithm budgets, three learner epochs. Each must store one
/// tree per task made by that algorithm, yield pairs with no empty span, change the weights and lower the training loss.
/// SPaR learns on its own campaign (<see cref="SparCampaignTests"/>); on Game of 24 it only has to run.
/// </summary>
[Collection(Game24WarmupCollection.Name)]
public sealed class SearchAlgorithmCampaignTests(Game24Warmup warmup)
{
    [Theory]
    [InlineData("mcts", "mcts-dpo", "dpo", "search.mcts.parallel-simulations=3", "search.mcts.commit-and-reuse=true")]
    [InlineData("mcts", "visit-distribution", "policy-ce", "search.mcts.parallel-simulations=2", "preferences.visit-temperature=0.5")]
    [InlineData("mcts", "agent-q", "dpo", "search.mcts.selection=ucb1", "search.mcts.value=agent-q")]
    [InlineData("best-first", "tree-plv", "dpo", "search.best-first.look-ahead=4", "search.best-first.max-expansions=4")]
    [InlineData("beam", "mcts-dpo", "dpo", "search.beam.width=2", "search.expansions=3")]
    [InlineData("dfsdt", "success-path", "dpo", "search.dfsdt.max-expansions=6", "search.expansions=3")]
    [InlineData("tree-rollout", "treerpo", "ppo-clip", "search.tree-rollout.branch-depths=0,2", "search.tree-rollout.max-width=4")]
    public async Task Every_algorithm_trains_in_a_game24_campaign(string algorithm, string extractor, string loss, string setting1, string setting2)
    {
        var (runDir, trees) = await RunAsync(algorithm, "--set", $"preferences.extractor={extractor}", "--set", $"learner.loss={loss}",
            "--set", setting1, "--set", setting2, "--set", "learner.epochs=3");
        try
        {
            TrainingChecks.AssertLearned(runDir);
            if (extractor == "tree-plv") AssertLookAheadPairs(trees);
            if (extractor != "treerpo") // advantages are single completions: inspect --pairs reads pairs and lists
            {
                var inspect = await CliRunner.RunAsync("inspect", "--pairs", "--run-dir", runDir, "--iteration", "1", "--format", "json");
                Assert.True(inspect.ExitCode == 0, inspect.Stdout + inspect.Stderr);
                var mine = JsonDocument.Parse(inspect.Stdout).RootElement.GetProperty("extractors").EnumerateArray()
                    .Single(e => e.GetProperty("extractor").GetString() == extractor);
                Assert.True(mine.GetProperty("pairs").GetInt32() > 0);
                Assert.Equal(0, mine.GetProperty("emptySpans").GetInt32());
                Assert.Equal(0, mine.GetProperty("identical").GetInt32());
            }
        }
        finally
        {
            try { Directory.Delete(runDir, true); } catch (IOException) { }
        }
    }

    [Fact]
    public async Task Spar_runs_in_a_game24_campaign()
    {
        var (runDir, _) = await RunAsync("spar", "--set", "preferences.extractor=spar", "--set", "search.spar.branch=2", "--set", "learner.epochs=0");
        try { Assert.True(File.Exists(Path.Combine(runDir, "summary.json"))); }
        finally
        {
            try { Directory.Delete(runDir, true); } catch (IOException) { }
        }
    }

    /// <summary>
    /// Tree-PLV's pairs, extracted from the trees read back from the journal, are made on the look-ahead rewards the
    /// best-first search stored with each step: a pair's scores are its two steps' mean rollout rewards, at least the
    /// margin apart.
    /// </summary>
    static void AssertLookAheadPairs(IReadOnlyList<SelfPlay.Core.Trees.PreferenceTree> trees)
    {
        var checkedPairs = 0;
        foreach (var tree in trees)
            foreach (var pair in SelfPlay.Core.Preferences.Extractors.Get("tree-plv").Extract(tree, new(Margin: 0.375), new Random(0)))
            {
                var nodes = pair.Candidates.Select(c => SelfPlay.Core.Preferences.PairDiagnostics.FirstStepNode(tree, pair.Prompt, c)!).ToList();
                var rewards = nodes.Select(n => n.LookAheadRewards.Length > 0 ? n.LookAheadRewards.Average() : n.TerminalReward!.Value).ToList();
                Assert.Equal(rewards, pair.Candidates.Select(c => c.Score));
                Assert.True(rewards[0] - rewards[1] >= 0.375 - 1e-9);
                checkedPairs += nodes.Count(n => n.LookAheadRewards.Length == 4);
            }
        Assert.True(checkedPairs > 0, "no pair had a step with stored look-ahead rewards");
    }

    /// <summary>One iteration of 8 trees from the shared warm-up; checks the stored trees; returns the run folder and the trees.</summary>
    async Task<(string RunDir, IReadOnlyList<SelfPlay.Core.Trees.PreferenceTree> Trees)> RunAsync(string algorithm, params string[] sets)
    {
        var runDir = Path.Combine(Path.GetTempPath(), $"selfplay-{algorithm}-" + Guid.NewGuid().ToString("N"));
        var result = await CliRunner.RunAsync(["run", "--config", Path.Combine(CliRunner.RepoRoot, "hocon/campaigns/game24-quick.conf"), .. Game24Warmup.Model,
            "--set", $"warmup.from-checkpoint={warmup.Checkpoint}", "--set", $"search.algorithm={algorithm}", .. sets,
            "--set", "iterations.trees=8", "--set", "eval.greedy=false", "--run-dir", runDir]);
        Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
        using (var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json"))))
            Assert.Equal(8, summary.RootElement.GetProperty("iterations")[1].GetProperty("trees").GetInt32());

        IReadOnlyList<SelfPlay.Core.Trees.PreferenceTree> stored = [];
        var system = ActorSystem.Create("algorithm-check", SelfPlayHost.AkkaConfig(new PersistenceConfig("sqlite", ""), runDir, serilog: false));
        try
        {
            var trees = await TreeQueries.IterationTreesAsync(system, "game24-quick", 1);
            Assert.Equal(8, trees.Count);
            stored = trees;
            Assert.All(trees, t =>
            {
                Assert.Equal(algorithm, t.Algorithm);
                Assert.True(t.Nodes.Count > 1, t.TreeId);
                Assert.True(t.Stats.WallMs > 0 && t.Stats.ProposerCalls > 0, t.TreeId);
                Assert.All(t.Nodes.Skip(1), n => Assert.Equal(n.TokenIds.Length, n.LogProbs.Length));
            });
        }
        finally
        {
            await system.Terminate();
        }
        return (runDir, stored);
    }
}

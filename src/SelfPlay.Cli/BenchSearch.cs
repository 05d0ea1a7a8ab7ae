using System.Diagnostics;
using System.Text.Json;
using Akka.Actor;
using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;
using SelfPlay.Core.Trees;

namespace SelfPlay.Cli;

/// <summary>
/// `selfplay bench search`: (1) MCTS node visits per second on one thread with an instant proposer, environment and
/// critic (so only the search's own bookkeeping is timed); (2) on a Game-of-24 campaign, the share of search wall time
/// spent outside the model (proposals), the critic and the environment, from the timings every tree carries.
/// Prints one JSON object.
/// </summary>
public static class BenchSearch
{
    public static async Task<int> RunAsync(CliArgs a)
    {
        var simulations = int.TryParse(a.Get("--simulations") ?? "200000", out var s) && s > 0 ? s
            : throw new UsageException("--simulations must be a positive integer");
        var visits = await VisitsPerSecondAsync(simulations);
        object? campaign = a.Has("--skip-campaign") ? null
            : await CampaignOverheadAsync(a.Get("--config") ?? Path.Combine("hocon", "campaigns", "game24-quick.conf"), a.All("--set"));
        Console.WriteLine(JsonSerializer.Serialize(new { mctsInstant = visits, campaign },
            new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    /// <summary>An environment whose every step is one letter; a game ends after <c>depth</c> letters, reward from the letters.</summary>
    sealed class InstantEnvironment(int depth) : IEnvironment
    {
        public string Name => "instant";
        public string StepStop => "\n";
        public string InitialState(EnvTask task) => "";

        public StepOutcome Step(EnvTask task, string state, string action)
        {
            var steps = state.Length / 2 + 1;
            if (steps < depth) return StepOutcome.Continue(action + "\n");
            var reward = (state.GetHashCode(StringComparison.Ordinal) & 3) == 0 ? 1.0 : 0.0; // fixed within one process
            return StepOutcome.End(action + "\n", reward, "end");
        }

        public (double Reward, string Reason) Verify(EnvTask task, string finalState) => (0, "");
        public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random) => null;
    }

    /// <summary>Always the same k steps with fixed log-probs, already allocated.</summary>
    sealed class InstantProposer(int k) : IStepProposer
    {
        readonly IReadOnlyList<ProposedStep> _steps = Enumerable.Range(0, k)
            .Select(i => new ProposedStep(((char)('a' + i)).ToString(), [i, 10], [-0.1f * (i + 1), -0.2f])).ToArray();

        public Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<IReadOnlyList<ProposedStep>>>(requests.Select(_ => _steps).ToArray());
    }

    sealed class InstantCritic : INodeEvaluator
    {
        public string Name => "instant";
        public Task<IReadOnlyList<double>> EvaluateAsync(EnvTask task, IReadOnlyList<NodeToScore> nodes, CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<double>>(nodes.Select(n => n.Outcome.IsTerminal ? n.Outcome.Reward : 0.0).ToArray());
    }

    static async Task<object> VisitsPerSecondAsync(int simulations)
    {
        const int depth = 6, k = 3;
        var env = new InstantEnvironment(depth);
        var options = new MctsOptions(Simulations: simulations, Expansions: k, DepthLimit: depth, Seed: 1);
        // Warm-up run (JIT), then the measured one.
        await new Mcts(env, new InstantProposer(k), new InstantCritic(), options with { Simulations = 2000 }).SearchAsync("warm-up", new EnvTask("b", "b"));
        var clock = Stopwatch.StartNew();
        var tree = await new Mcts(env, new InstantProposer(k), new InstantCritic(), options).SearchAsync("bench", new EnvTask("b", "b"));
        var seconds = clock.Elapsed.TotalSeconds;
        // A node visit = one node on one simulation's path (the backup touches each once).
        var nodeVisits = tree.Nodes.Sum(n => (long)n.Visits);
        return new
        {
            simulations,
            depth,
            expansions = k,
            nodes = tree.Nodes.Count,
            nodeVisits,
            seconds = Math.Round(seconds, 4),
            nodeVisitsPerSecond = Math.Round(nodeVisits / seconds),
            simulationsPerSecond = Math.Round(simulations / seconds),
            target = 1_000_000,
        };
    }

    static async Task<object> CampaignOverheadAsync(string configFile, IReadOnlyList<string> sets)
    {
        if (!File.Exists(configFile)) throw new UsageException($"config file not found: {configFile} (run from the repository root or pass --config)");
        var runDir = Path.Combine(Path.GetTempPath(), "selfplay-bench-search-" + Guid.NewGuid().ToString("N"));
        // Two iterations: the first one's trees also pay for compiling the search code (JIT); the second is measured.
        string[] fixedSets = ["iterations.count=2", "eval.greedy=false"];
        var config = ConfigLoader.Parse(ConfigLoader.Build(configFile, sets.Concat(fixedSets)));
        string[] runArgs = ["run", "--config", configFile, .. sets.Concat(fixedSets).SelectMany(x => new[] { "--set", x }), "--run-dir", runDir];
        var stdout = Console.Out;
        try
        {
            // The campaign's own progress output would break the JSON on stdout.
            Console.SetOut(TextWriter.Null);
            var code = await SelfPlayCommand.MainAsync(runArgs);
            Console.SetOut(stdout);
            if (code != 0) throw new InvalidDataException($"the benchmark campaign failed with exit code {code}");
            var system = ActorSystem.Create("bench-search", SelfPlayHost.AkkaConfig(config.Persistence, runDir, serilog: false));
            try
            {
                var first = Shares(await TreeQueries.IterationTreesAsync(system, config.Name, 1));
                var measured = Shares(await TreeQueries.IterationTreesAsync(system, config.Name, 2));
                return new { config = configFile, algorithm = config.Search.Algorithm, searchWorkers = config.Actors.SearchWorkers,
                    measured, firstIteration = first, target = 0.05 };
            }
            finally
            {
                await system.Terminate();
            }
        }
        finally
        {
            Console.SetOut(stdout);
            try { Directory.Delete(runDir, true); } catch (IOException) { }
        }
    }

    static object Shares(IReadOnlyList<PreferenceTree> trees)
    {
        double wall = trees.Sum(t => t.Stats.WallMs), model = trees.Sum(t => t.Stats.ProposerMs), critic = trees.Sum(t => t.Stats.EvaluatorMs),
            env = trees.Sum(t => t.Stats.EnvironmentMs), other = trees.Sum(t => t.Stats.OverheadMs);
        return new
        {
            trees = trees.Count,
            nodes = trees.Sum(t => t.Nodes.Count),
            searchWallMs = Math.Round(wall, 1),
            modelMs = Math.Round(model, 1),
            criticMs = Math.Round(critic, 1),
            environmentMs = Math.Round(env, 1),
            otherMs = Math.Round(other, 1),
            // The critic here is the environment's verifier, so it counts with the environment.
            shareOutsideModelAndEnvironment = wall == 0 ? 0 : Math.Round(other / wall, 5),
        };
    }
}

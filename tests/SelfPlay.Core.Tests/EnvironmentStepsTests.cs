using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;

namespace SelfPlay.Core.Tests;

/// <summary>Records every call it passes on to the in-process environment.</summary>
internal sealed class RecordingSteps(IEnvironment environment, bool scoreSteps = false) : IEnvironmentSteps
{
    readonly InlineEnvironmentSteps _inline = new(environment, scoreSteps);
    public List<int> BatchSizes { get; } = [];
    public int InitialStates { get; private set; }
    public int Verifications { get; private set; }

    public Task<string> InitialStateAsync(EnvTask task, CancellationToken cancellationToken = default)
    {
        InitialStates++;
        return _inline.InitialStateAsync(task, cancellationToken);
    }

    public Task<IReadOnlyList<VerifiedState>> VerifyAsync(EnvTask task, IReadOnlyList<string> finalStates, CancellationToken cancellationToken = default)
    {
        Verifications += finalStates.Count;
        return _inline.VerifyAsync(task, finalStates, cancellationToken);
    }

    public Task<IReadOnlyList<StepOutcome>> StepAsync(EnvTask task, IReadOnlyList<EnvStep> steps, CancellationToken cancellationToken = default)
    {
        BatchSizes.Add(steps.Count);
        return _inline.StepAsync(task, steps, cancellationToken);
    }
}

/// <summary>"good" scores 0.9, "bad" throws in ScoreStep, "big" scores 2; "end" ends with 0.3, which Verify re-scores as 0.7.</summary>
internal sealed class StepScoringEnvironment : IEnvironment
{
    public string Name => "step-scoring";
    public string StepStop => "\n";
    public string InitialState(EnvTask task) => "> ";
    public StepOutcome Step(EnvTask task, string state, string action) =>
        action == "end" ? StepOutcome.End("end\n", 0.3, "ended") : StepOutcome.Continue(action + "\n");
    public (double Reward, string Reason) Verify(EnvTask task, string finalState) => (0.7, "re-verified");
    public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random) => null;
    public double? ScoreStep(EnvTask task, string stateBefore, string action, StepOutcome outcome) => action switch
    {
        "good" => 0.9,
        "bad" => throw new InvalidOperationException("no score"),
        "big" => 2,
        _ => null,
    };
}

public class EnvironmentStepsTests
{
    [Fact]
    public async Task The_environment_critic_scores_open_steps_with_the_environments_step_score_and_terminals_verified()
    {
        var env = new StepScoringEnvironment();
        var steps = new RecordingSteps(env, scoreSteps: true);
        var task = new EnvTask("s", "");
        string[] actions = ["good", "bad", "big", "plain", "end"];
        // Scores are computed only when asked for (search.critic = environment), so other critics pay no ScoreStep call.
        Assert.All(await new InlineEnvironmentSteps(env).StepAsync(task, actions.Select(a => new EnvStep("> ", a)).ToList()), o => Assert.Null(o.StepScore));
        var outcomes = await steps.StepAsync(task, actions.Select(a => new EnvStep("> ", a)).ToList());
        // A throwing or out-of-range score gives none; a terminal step gets none (Verify scores it).
        Assert.Equal(new double?[] { 0.9, null, null, null, null }, outcomes.Select(o => o.StepScore));
        var nodes = outcomes.Select(o => new NodeToScore("> ", "> " + o.Appended, o)).ToList();
        var critic = new StepScoreEvaluator(steps);
        Assert.Equal("environment", critic.Name);
        Assert.Equal(new[] { 0.9, 0, 0, 0, 0.7 }, await critic.EvaluateAsync(task, nodes));
        Assert.Equal(1, steps.Verifications); // the terminal only, re-verified through the steps
        Assert.Equal(new[] { 0.0, 0, 0, 0, 0.7 }, await new VerifierEvaluator(steps).EvaluateAsync(task, nodes));
    }


    static readonly EnvTask ToyTask = new("toy", "t");
    static readonly Dictionary<string, double> Rewards = new() { ["aaa"] = 1, ["abb"] = 1, ["bab"] = 1, ["bbb"] = 0.2 };

    static ITreeSearch Create(string algorithm, IEnvironment env, IEnvironmentSteps? steps) =>
        SearchAlgorithms.Create(new SearchConfig(algorithm, Simulations: 12, Expansions: 3, CPuct: 1.0, LengthPenalty: 1.25, Temperature: 1.0,
                Backup: "visit-weighted", BestFirst: new BestFirstConfig(LookAhead: 4, MaxExpansions: 4), Beam: new BeamConfig(2),
                Dfsdt: new DfsdtConfig(6), Spar: new SparConfig(Branch: 2, SelectBranch: 2, MaxDepth: 2, JudgeSamples: 3, ActorSamples: 2),
                TreeRollout: new TreeRolloutConfig(BranchFactor: 2, BranchDepths: "0,1", MaxWidth: 8)),
            env, new SeededToyProposer("abc"), new VerifierEvaluator(env), depthLimit: 3, policyVersion: 1, seed: 11, steps);

    public static TheoryData<string> Algorithms => new(SearchAlgorithms.Names);

    [Theory]
    [MemberData(nameof(Algorithms))]
    public async Task Batched_steps_give_the_same_tree_with_one_environment_call_per_expansion(string algorithm)
    {
        var plain = await Create(algorithm, new ToyTreeEnvironment(3, Rewards), null).SearchAsync("t", ToyTask);
        var env = new ToyTreeEnvironment(3, Rewards);
        var recording = new RecordingSteps(env);
        var batched = await Create(algorithm, env, recording).SearchAsync("t", ToyTask);

        Assert.Equal(MctsTests.Json(plain), MctsTests.Json(batched));
        Assert.NotEmpty(recording.BatchSizes);
        Assert.All(recording.BatchSizes, n => Assert.True(n > 0));
        // A node's proposals (or a rollout round's steps) travel together: several steps per call, at most one call per proposer call.
        Assert.Contains(recording.BatchSizes, n => n > 1);
        if (algorithm != "spar") Assert.True(recording.BatchSizes.Count <= batched.Stats.ProposerCalls);
        // The root state comes through the same calls (SPaR's refiner asks again per round); SPaR's verifier judge verifies there too.
        Assert.True(algorithm == "spar" ? recording.InitialStates >= 1 : recording.InitialStates == 1, $"{recording.InitialStates} initial states");
        if (algorithm == "spar") Assert.True(recording.Verifications > 0);
    }

    [Fact]
    public async Task Inline_steps_turn_a_throwing_step_into_reward_zero_with_a_one_line_reason_and_keep_going()
    {
        var steps = new InlineEnvironmentSteps(new ToyTreeEnvironment(3, Rewards, throwOn: "b"));
        var outcomes = await steps.StepAsync(ToyTask, [new("Toy t\n", "a"), new("Toy t\n", "b"), new("Toy t\na\n", "a")]);

        Assert.Equal(StepOutcome.Continue("a\n"), outcomes[0]);
        Assert.True(outcomes[1].IsTerminal);
        Assert.Equal(0, outcomes[1].Reward);
        Assert.Equal("environment error: InvalidOperationException: kaboom second line", outcomes[1].Reason);
        Assert.Equal(StepOutcome.Continue("a\n"), outcomes[2]);
    }
}

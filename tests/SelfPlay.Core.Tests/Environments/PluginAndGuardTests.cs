using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;
using SelfPlay.Samples.Addition;

namespace SelfPlay.Core.Tests.Environments;

public class PluginAndGuardTests
{
    const string AdditionType = "SelfPlay.Samples.Addition.AdditionProvider, SelfPlay.Samples.Addition";

    static EnvironmentConfig Config(string type, string pluginFolder = "", double timeout = 10) =>
        new(type, "operation", HeldOut: 5, SplitSeed: 1, MaxSteps: 1, PluginFolder: pluginFolder, StepTimeoutSeconds: timeout, TrainTasks: 20);

    [Fact]
    public void An_assembly_qualified_type_names_a_provider_and_the_environment_comes_guarded()
    {
        var setup = new EnvironmentRegistry().Create(Config(AdditionType));
        var guarded = Assert.IsType<GuardedEnvironment>(setup.Environment);
        Assert.IsType<AdditionEnvironment>(guarded.Inner);
        Assert.Equal((5, 20), (setup.HeldOut.Count, setup.Train.Count));
        Assert.Empty(setup.HeldOut.Select(t => t.Id).Intersect(setup.Train.Select(t => t.Id)));
    }

    [Theory]
    [InlineData("Nope.Provider, Nope.Assembly", "assembly 'Nope.Assembly' not found")]
    [InlineData("SelfPlay.Samples.Addition.Missing, SelfPlay.Samples.Addition", "type 'SelfPlay.Samples.Addition.Missing' not found in assembly 'SelfPlay.Samples.Addition'")]
    [InlineData("SelfPlay.Samples.Addition.AdditionEnvironment, SelfPlay.Samples.Addition", "does not implement SelfPlay.Core.Environments.IEnvironmentProvider")]
    [InlineData(", SelfPlay.Samples.Addition", "must be \"Namespace.Type, Assembly\"")]
    [InlineData("Evil.Provider, ../../tmp/evil", "'../../tmp/evil' is not a simple assembly name")]
    [InlineData("Evil.Provider, /tmp/evil", "is not a simple assembly name")]
    [InlineData("chess", "unknown environment 'chess' (known: addition-test)")]
    public void Unknown_types_and_assemblies_are_one_line_errors(string type, string expected)
    {
        var registry = new EnvironmentRegistry().Register(new NamedProvider("addition-test"));
        var e = Assert.Throws<ArgumentException>(() => registry.Create(Config(type)));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_built_in_environment_never_loads_the_plugin_folder()
    {
        var folder = Path.Combine(Path.GetTempPath(), "selfplay-unloadable-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            File.Copy(typeof(AdditionProvider).Assembly.Location, Path.Combine(folder, "Plugin.dll"));
            var registry = new EnvironmentRegistry().Register(new AdditionProvider());
            Assert.IsType<AdditionProvider>(registry.Provider(Config("addition", pluginFolder: folder)));
            Assert.False(PluginLoader.HasLoadedFrom(folder));
            Assert.Throws<ArgumentException>(() => registry.Provider(Config("other", pluginFolder: folder))); // not in the folder either
            Assert.True(PluginLoader.HasLoadedFrom(folder)); // but this time the folder was loaded
            Assert.Contains("plugin-folder not found", Assert.Throws<ArgumentException>(() =>
                registry.Provider(Config("addition", pluginFolder: folder + "-missing"))).Message);
        }
        finally { Directory.Delete(folder, true); }
    }

    [Fact]
    public void A_plugin_folder_registers_its_providers_by_name_and_skips_native_files()
    {
        var folder = Directory.CreateTempSubdirectory("selfplay-plugins").FullName;
        try
        {
            File.Copy(typeof(AdditionProvider).Assembly.Location, Path.Combine(folder, "SelfPlay.Samples.Addition.dll"));
            File.WriteAllBytes(Path.Combine(folder, "libnative.dll"), [0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]);
            var setup = new EnvironmentRegistry().Create(Config("addition", folder));
            Assert.Equal("addition", setup.Environment.Name);
            Assert.Contains("environment.plugin-folder not found", Assert.Throws<ArgumentException>(() => new EnvironmentRegistry().Create(Config("addition", folder + "-missing"))).Message);
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }

    [Fact]
    public void Settings_are_typed_and_unknown_ones_rejected()
    {
        var config = Config("x") with { Settings = new Dictionary<string, string> { ["min-numbers"] = "5", ["bogus"] = "1" } };
        Assert.Equal(5, config.Setting("min-numbers", 4, 3, 8));
        Assert.Equal(4, config.Setting("max-numbers", 4, 3, 8));
        Assert.Contains("unknown setting environment.settings.bogus", Assert.Throws<ArgumentException>(() => config.CheckKnown("countdown", "min-numbers")).Message);
        Assert.Contains("must be an integer in 6..8", Assert.Throws<ArgumentException>(() => config.Setting("min-numbers", 6, 6, 8)).Message);
    }

    [Fact]
    public void Default_members_give_no_hints_and_no_step_scores()
    {
        IEnvironment env = new AdditionEnvironment();
        var task = new EnvTask("t", "1+2");
        Assert.Null(env.LegalActions(task, env.InitialState(task)));
        Assert.Null(env.ScoreStep(task, "1+2=", "3", StepOutcome.End("3\n", 1, "correct")));
    }

    [Fact]
    public void The_addition_sample_solves_rejects_and_verifies()
    {
        var env = new AdditionEnvironment();
        var task = new EnvTask("t", "12+34");
        Assert.Equal("12+34=", env.InitialState(task));
        Assert.Equal((1.0, "correct"), (env.Step(task, "12+34=", "46").Reward, env.Step(task, "12+34=", "46").Reason));
        Assert.Equal("45 is wrong", env.Step(task, "12+34=", "45").Reason);
        Hostile.AssertRejected(env, task);
        Hostile.AssertVerifyRejects(env, task);
        Hostile.AssertReferenceSolutionsSolve(env, [task, new EnvTask("u", "0+99")]);
    }

    [Fact]
    public void A_throwing_environment_ends_the_step_with_reward_0_and_a_reason()
    {
        var env = new GuardedEnvironment(new FaultyEnvironment(Fault.Throw), TimeSpan.FromSeconds(5));
        var task = new EnvTask("t", "1+2");
        var outcome = env.Step(task, "1+2=", "3");
        Assert.True(outcome.IsTerminal);
        Assert.Equal(0, outcome.Reward);
        Assert.Equal("environment error: InvalidOperationException: boom in step", outcome.Reason);
        Assert.Equal((0.0, "verifier error: InvalidOperationException: boom in verify"), env.Verify(task, "1+2=3\n"));
        Assert.Null(env.ReferenceActions(task, new Random(1)));
        var start = Assert.Throws<EnvironmentFailure>(() => env.InitialState(task));
        Assert.Equal("faulty: initial state of task t: InvalidOperationException: boom in initial state", start.Message);
    }

    [Fact]
    public void A_hanging_environment_times_out_and_the_next_calls_still_run()
    {
        using var release = new ManualResetEventSlim();
        var env = new GuardedEnvironment(new FaultyEnvironment(Fault.Hang, release), TimeSpan.FromMilliseconds(200));
        var task = new EnvTask("t", "1+2");
        for (var i = 0; i < 12; i++) // more hung calls than the pool has threads: each is replaced
        {
            var outcome = env.Step(task, "1+2=", "3");
            Assert.Equal((true, 0.0, "environment error: step timed out after 0.2 s"), (outcome.IsTerminal, outcome.Reward, outcome.Reason));
        }
        Assert.Contains("timed out", Assert.Throws<EnvironmentFailure>(() => env.InitialState(task)).Message);
        release.Set();
        var healthy = new GuardedEnvironment(new AdditionEnvironment(), TimeSpan.FromMilliseconds(500));
        Assert.Equal(1, healthy.Step(task, "1+2=", "3").Reward);
    }

    [Fact]
    public void Outcomes_outside_the_contract_are_rejected()
    {
        var env = new GuardedEnvironment(new FaultyEnvironment(Fault.BadReward), TimeSpan.Zero);
        var task = new EnvTask("t", "1+2");
        Assert.Equal("environment error: reward 7 is outside [0, 1]", env.Step(task, "1+2=", "3").Reason);
        Assert.Equal((0.0, "verifier error: reward NaN is outside [0, 1]"), env.Verify(task, "x"));
    }

    [Fact]
    public async Task Greedy_evaluation_counts_a_task_that_cannot_start_as_failed_and_goes_on()
    {
        var env = new GuardedEnvironment(new FaultyEnvironment(Fault.ThrowOnTaskB), TimeSpan.FromSeconds(5));
        var tasks = new[] { new EnvTask("a", "1+2"), new EnvTask("b", "2+2"), new EnvTask("c", "3+3") };
        var result = await Evaluation.GreedyAsync(env, tasks, new AnswerProposer(), maxSteps: 1);
        Assert.Equal(new EvalResult(2, 3, 1, "faulty: initial state of task b: InvalidOperationException: boom in initial state"), result);
    }

    /// <summary>Answers every "a+b=" state with the right sum.</summary>
    sealed class AnswerProposer : IStepProposer
    {
        public Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken cancellationToken = default) =>
            Task.FromResult<IReadOnlyList<IReadOnlyList<ProposedStep>>>(requests.Select(r =>
                (IReadOnlyList<ProposedStep>)[new ProposedStep(r.State.TrimEnd('=').Split('+').Sum(int.Parse).ToString(), [1], [-0.1f])]).ToList());
    }

    sealed class NamedProvider(string name) : IEnvironmentProvider
    {
        public string Name => name;
        public EnvironmentSetup Create(EnvironmentConfig config) => new(new AdditionEnvironment(), [], []);
    }
}

public enum Fault { Throw, Hang, BadReward, ThrowOnTaskB }

/// <summary>An environment that misbehaves on purpose (a stand-in for a broken third-party plug-in).</summary>
public sealed class FaultyEnvironment(Fault fault, ManualResetEventSlim? release = null) : IEnvironment
{
    readonly AdditionEnvironment _inner = new();
    public string Name => "faulty";
    public string StepStop => "\n";

    public string InitialState(EnvTask task)
    {
        Misbehave("initial state", task);
        return _inner.InitialState(task);
    }

    public StepOutcome Step(EnvTask task, string state, string action)
    {
        Misbehave("step", task);
        return fault == Fault.BadReward ? StepOutcome.End("x\n", 7, "too good") : _inner.Step(task, state, action);
    }

    public (double Reward, string Reason) Verify(EnvTask task, string finalState)
    {
        Misbehave("verify", task);
        return fault == Fault.BadReward ? (double.NaN, "?") : _inner.Verify(task, finalState);
    }

    public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random)
    {
        Misbehave("reference", task);
        return _inner.ReferenceActions(task, random);
    }

    void Misbehave(string where, EnvTask task)
    {
        if (fault == Fault.Throw || (fault == Fault.ThrowOnTaskB && task.Id == "b" && where == "initial state"))
            throw new InvalidOperationException("boom in " + where);
        if (fault == Fault.Hang) release!.Wait();
    }
}

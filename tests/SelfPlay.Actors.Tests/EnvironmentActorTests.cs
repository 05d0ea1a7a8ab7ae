using Akka.Actor;
using Akka.Cluster;
using SelfPlay.Actors.Environments;
using SelfPlay.Actors.Hosting;
using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Samples.Game24;

namespace SelfPlay.Actors.Tests;

/// <summary>Game of 24 that counts the steps it applied (and its initial states and verifications), throws on "boom",
/// blocks on "hang" until released, and cannot start a task whose input is "broken".</summary>
sealed class CountingEnvironment(ManualResetEventSlim release) : IEnvironment
{
    readonly Game24Environment _inner = new();
    int _steps, _calls;
    public int Steps => Volatile.Read(ref _steps);
    /// <summary>Initial states and verifications asked for.</summary>
    public int OtherCalls => Volatile.Read(ref _calls);

    public string Name => "counting-24";
    public string StepStop => _inner.StepStop;
    public string InitialState(EnvTask task)
    {
        Interlocked.Increment(ref _calls);
        return task.Input == "broken" ? throw new InvalidOperationException("no board\nhere") : _inner.InitialState(task);
    }

    public (double Reward, string Reason) Verify(EnvTask task, string finalState)
    {
        Interlocked.Increment(ref _calls);
        return _inner.Verify(task, finalState);
    }
    public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random) => null;

    public StepOutcome Step(EnvTask task, string state, string action)
    {
        Interlocked.Increment(ref _steps);
        if (action == "boom") throw new InvalidOperationException("boom\nat line 2");
        if (action == "hang") release.Wait();
        return _inner.Step(task, state, action);
    }
}

public sealed class EnvironmentActorTests : Akka.TestKit.Xunit2.TestKit
{
    static readonly EnvTask Task24 = new("4-5-6-10", "4 5 6 10");
    readonly ManualResetEventSlim _release = new(false);

    static IReadOnlyList<EnvStep> Steps(IEnvironment env, params string[] actions)
    {
        var start = env.InitialState(Task24);
        return actions.Select(a => new EnvStep(start, a)).Append(new EnvStep(start + "5 * 4 = 20 (left: 6 10 20)\n", "10 - 6")).ToList();
    }

    [Fact]
    public async Task The_actor_answers_what_the_inline_path_answers()
    {
        var env = new GuardedEnvironment(new CountingEnvironment(_release), TimeSpan.FromSeconds(5));
        var steps = Steps(env, "5 * 4", "4 + 4", "7 * 7", "", "boom");
        var actor = Sys.ActorOf(Props.Create(() => new EnvironmentActor(env)));

        var viaActor = await new ActorEnvironmentSteps(actor, TimeSpan.FromSeconds(10)).StepAsync(Task24, steps);
        var inline = await new InlineEnvironmentSteps(new GuardedEnvironment(new CountingEnvironment(_release), TimeSpan.FromSeconds(5))).StepAsync(Task24, steps);

        Assert.Equal(inline, viaActor);
        Assert.Equal(StepOutcome.Continue("5 * 4 = 20 (left: 6 10 20)\n"), viaActor[0]);
        Assert.Equal(0, viaActor[4].Reward);
        Assert.Equal("environment error: InvalidOperationException: boom at line 2", viaActor[4].Reason);
    }

    [Fact]
    public async Task Initial_states_and_verification_are_answered_as_inline_and_a_task_that_cannot_start_is_one_line()
    {
        var env = new GuardedEnvironment(new CountingEnvironment(_release), TimeSpan.FromSeconds(5));
        var client = new ActorEnvironmentSteps(Sys.ActorOf(Props.Create(() => new EnvironmentActor(env))), TimeSpan.FromSeconds(10));
        var inline = new InlineEnvironmentSteps(env);

        Assert.Equal(await inline.InitialStateAsync(Task24), await client.InitialStateAsync(Task24));
        var start = env.InitialState(Task24);
        string[] finals = [start + "Answer: (4 * 5) + (10 - 6) = 24\n", start + "Answer: 4 + 5 + 6 + 10 = 24\n", ""];
        var verified = await client.VerifyAsync(Task24, finals);
        Assert.Equal(await inline.VerifyAsync(Task24, finals), verified);
        Assert.Equal(3, verified.Count);
        Assert.Empty(await client.VerifyAsync(Task24, []));

        var failure = await Assert.ThrowsAsync<EnvironmentFailure>(() => client.InitialStateAsync(new EnvTask("b", "broken")));
        Assert.Equal("counting-24: initial state of task b: InvalidOperationException: no board here", failure.Message);
    }

    [Fact]
    public async Task A_throwing_or_hanging_step_is_reward_zero_with_a_logged_reason_and_the_actor_keeps_serving()
    {
        var counting = new CountingEnvironment(_release);
        var actor = Sys.ActorOf(Props.Create(() => new EnvironmentActor(new GuardedEnvironment(counting, TimeSpan.FromMilliseconds(300)))));
        var client = new ActorEnvironmentSteps(actor, TimeSpan.FromSeconds(10));

        IReadOnlyList<StepOutcome> outcomes = [];
        await EventFilter.Warning(contains: "timed out after 0.3 s").ExpectOneAsync(async () =>
            outcomes = await client.StepAsync(Task24, Steps(counting, "hang", "boom")));
        Assert.Equal((true, 0.0, "environment error: step timed out after 0.3 s"), (outcomes[0].IsTerminal, outcomes[0].Reward, outcomes[0].Reason));
        Assert.StartsWith("environment error: InvalidOperationException: boom", outcomes[1].Reason);
        Assert.Equal(StepOutcome.Continue("10 - 6 = 4 (left: 4 20)\n"), outcomes[2]);

        // The same actor, not restarted, serves the next batch.
        var next = await client.StepAsync(Task24, Steps(counting, "5 * 4"));
        Assert.Equal(StepOutcome.Continue("5 * 4 = 20 (left: 6 10 20)\n"), next[0]);
        Assert.Equal(5, counting.Steps);
    }

    [Fact]
    public async Task An_unguarded_hang_fails_only_its_own_request_while_the_mailbox_keeps_answering()
    {
        var counting = new CountingEnvironment(_release);
        var actor = Sys.ActorOf(Props.Create(() => new EnvironmentActor(counting))); // no step time-out: the hang is not contained
        var shortAsk = new ActorEnvironmentSteps(actor, TimeSpan.FromSeconds(2));

        var hung = shortAsk.StepAsync(Task24, Steps(counting, "hang"));
        // Answered while the hung batch still runs: it is released only at the end (whether its ask has already timed
        // out depends on the machine's load, so that is not asserted here).
        var answered = await new ActorEnvironmentSteps(actor, TimeSpan.FromSeconds(20)).StepAsync(Task24, Steps(counting, "5 * 4"));
        Assert.Equal(StepOutcome.Continue("5 * 4 = 20 (left: 6 10 20)\n"), answered[0]);

        var failure = await Assert.ThrowsAsync<EnvironmentFailure>(() => hung);
        Assert.Equal("no environment actor answered 2 step(s) of task 4-5-6-10 within 2 s", failure.Message);
        _release.Set();
    }

    [Fact]
    public async Task With_cluster_placement_a_search_node_steps_on_the_environment_node()
    {
        var dir = Path.Combine(Path.GetTempPath(), "selfplay-envactor-" + Guid.NewGuid().ToString("N"));
        var store = new PersistenceConfig("sqlite", "");
        var envNode = SelfPlayHost.CreateNode(store, Path.Combine(dir, "env"), new NodeOptions([EnvironmentPlacement.Role], []), serilog: false);
        ActorSystem? searchNode = null;
        try
        {
            var remote = new CountingEnvironment(_release);
            EnvironmentPlacement.StartActors(envNode, new GuardedEnvironment(remote, TimeSpan.FromSeconds(5)), 2);
            var seed = Cluster.Get(envNode).SelfAddress.ToString();
            searchNode = SelfPlayHost.CreateNode(store, Path.Combine(dir, "search"), new NodeOptions(["search", "inference"], [seed]), serilog: false);
            // Actors at the same paths on the search node, which lacks the environment role: the router must not use them.
            Assert.False(EnvironmentPlacement.Hosts("cluster", ["search", "inference"]));
            var local = new CountingEnvironment(_release);
            EnvironmentPlacement.StartActors(searchNode, local, 2);
            var client = new ActorEnvironmentSteps(EnvironmentPlacement.Router(searchNode, "cluster", 2), TimeSpan.FromSeconds(2));

            // The router learns its routees when the environment member is seen up; until then asks go unanswered.
            IReadOnlyList<StepOutcome>? outcomes = null;
            var steps = Steps(remote, "5 * 4", "boom");
            for (var deadline = DateTime.UtcNow.AddSeconds(25); outcomes is null && DateTime.UtcNow < deadline;)
            {
                try { outcomes = await client.StepAsync(Task24, steps); }
                catch (EnvironmentFailure) { }
            }
            Assert.NotNull(outcomes);
            Assert.Equal(await new InlineEnvironmentSteps(new CountingEnvironment(_release)).StepAsync(Task24, steps), outcomes);
            for (var i = 0; i < 4; i++) await client.StepAsync(Task24, steps); // round-robin over both remote actors
            var before = remote.OtherCalls;
            var start = await client.InitialStateAsync(Task24);
            var game = new Game24Environment();
            var solved = new[] { "5 * 4", "10 - 6", "20 + 4" }.Aggregate(start, (state, action) => state + game.Step(Task24, state, action).Appended);
            Assert.Equal(1, (await client.VerifyAsync(Task24, [solved]))[0].Reward);

            Assert.Equal(0, local.Steps + local.OtherCalls); // the search node has no environment role: nothing ran here
            Assert.Equal(before + 2, remote.OtherCalls);     // the initial state and the verification ran there too
            Assert.True(remote.Steps >= 5 * steps.Count); // every answered batch ran on the environment node (serialized both ways)
        }
        finally
        {
            if (searchNode is not null) await searchNode.Terminate();
            await envNode.Terminate();
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    protected override void Dispose(bool disposing)
    {
        _release.Set();
        base.Dispose(disposing);
    }
}

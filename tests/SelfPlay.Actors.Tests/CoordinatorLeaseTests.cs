using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Protocol;
using SelfPlay.Samples.Game24;

namespace SelfPlay.Actors.Tests;

/// <summary>Leases are journaled: a coordinator that restarts (or moves) keeps each task with the live worker that
/// holds it, and hands out at once only the tasks of workers that are gone. Its figures come from the journal too.</summary>
public sealed class CoordinatorLeaseTests() : Akka.TestKit.Xunit2.TestKit(Config, "coordinator-leases"), IDisposable
{
    static readonly Config Config = ConfigurationFactory.ParseString("""
        akka.persistence {
          journal { plugin = "akka.persistence.journal.test", test { class = "Akka.Persistence.TestKit.TestJournal, Akka.Persistence.TestKit", plugin-dispatcher = "akka.actor.default-dispatcher" } }
          snapshot-store { plugin = "akka.persistence.snapshot-store.test", test { class = "Akka.Persistence.TestKit.TestSnapshotStore, Akka.Persistence.TestKit", plugin-dispatcher = "akka.actor.default-dispatcher" } }
        }
        """).WithFallback(ConfigurationFactory.ParseString(SelfPlaySerializer.Hocon));

    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    readonly string _dir = Path.Combine(Path.GetTempPath(), "selfplay-leases-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task A_restarted_coordinator_keeps_the_tasks_of_live_workers_and_hands_out_those_of_dead_ones()
    {
        var (learner, inference, Coordinator) = Campaign("leases", tasks: 4);
        void LoadPolicy(int version = 0)
        {
            Assert.Equal(version, inference.ExpectMsg<LoadPolicy>(Timeout).Version);
            inference.Reply(new PolicyLoaded(version));
        }
        SearchTask Lease(TestProbe worker, IActorRef coordinator)
        {
            worker.Send(coordinator, RequestWork.Instance);
            return worker.ExpectMsg<SearchTask>(Timeout);
        }

        var first = Coordinator("first");
        first.Tell(StartCampaign.Instance);
        learner.ExpectMsg<RunWarmup>(Timeout);
        learner.Reply(new PolicyPublished(0, "/ckpt/v0", "abc", new TrainingReport(1, 0, 1, 1, double.NaN, 0.1)));
        LoadPolicy();
        var (alive, dead) = (CreateTestProbe(), CreateTestProbe());
        var kept = Lease(alive, first);
        var lost = Lease(dead, first);
        await Task.Delay(1500); // searching under the first coordinator


        // The coordinator and one of the two workers go; the journal stays.
        await WatchedStop(first);
        await WatchedStop(dead.Ref);

        var second = Coordinator("second"); // recovers and resumes by itself
        LoadPolicy();
        var others = new[] { CreateTestProbe(), CreateTestProbe(), CreateTestProbe() };
        var handedOut = others.Select(w => Lease(w, second)).ToList();
        Assert.DoesNotContain(kept.TaskId, handedOut.Select(t => t.TaskId)); // still the live worker's
        Assert.Contains(lost.TaskId, handedOut.Select(t => t.TaskId));      // the dead worker's, at once
        Assert.All(handedOut, t => Assert.True(t.LeaseId > lost.LeaseId, "lease ids go on from the journal's"));
        others[0].ExpectNoMsg(TimeSpan.FromMilliseconds(300));

        // The live worker reports to the new coordinator under its old lease: accepted, the iteration completes.
        alive.Send(second, new TaskCompleted(kept.TaskId, kept.TreeId, kept.LeaseId, 3, false, 1.0));
        for (var i = 0; i < others.Length; i++)
            others[i].Send(second, new TaskCompleted(handedOut[i].TaskId, handedOut[i].TreeId, handedOut[i].LeaseId, 3, false, 1.0));
        Assert.Equal(1, learner.ExpectMsg<TrainIteration>(Timeout).Iteration);

        // The iteration's search time counts from its journaled start, not from the second coordinator's.
        learner.Reply(new PolicyPublished(1, "/ckpt/v1", "def", new TrainingReport(4, 4, 0.7, 0.6, 0.5, 0.1)));
        LoadPolicy(1);
        var summaryFile = Path.Combine(_dir, "summary.json");
        await AwaitConditionAsync(() => Task.FromResult(File.Exists(summaryFile) && File.ReadAllText(summaryFile).Contains("\"completed\"")), Timeout);
        using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(summaryFile));
        var row = summary.RootElement.GetProperty("iterations")[1];
        var search = row.GetProperty("searchSeconds").GetDouble();
        Assert.InRange(search, 1.5, 30);
        Assert.True(row.GetProperty("wallSeconds").GetDouble() >= search);
        Assert.True(summary.RootElement.GetProperty("wallSeconds").GetDouble() >= search);
        Assert.Equal(4 / search, row.GetProperty("throughput").GetProperty("treesPerSecond").GetDouble(), 0.2);
    }

    [Fact]
    public async Task An_outcome_that_reaches_a_moved_coordinator_before_it_resumes_the_search_is_recorded_not_searched_again()
    {
        var (learner, inference, Coordinator) = Campaign("early-outcome", tasks: 3);

        var first = Coordinator("first-early");
        first.Tell(StartCampaign.Instance);
        learner.ExpectMsg<RunWarmup>(Timeout);
        learner.Reply(new PolicyPublished(0, "/ckpt/v0", "abc", new TrainingReport(1, 0, 1, 1, double.NaN, 0.1)));
        inference.ExpectMsg<LoadPolicy>(Timeout);
        inference.Reply(new PolicyLoaded(0));
        var worker = CreateTestProbe();
        worker.Send(first, RequestWork.Instance);
        var leased = worker.ExpectMsg<SearchTask>(Timeout);
        await WatchedStop(first);

        // The worker finishes while the coordinator moves: its report (and its next request) reach the new coordinator
        // while that one still waits for its node's policy, before it resumes the search.
        var second = Coordinator("second-early");
        Assert.Equal(0, inference.ExpectMsg<LoadPolicy>(Timeout).Version);
        worker.Send(second, new TaskCompleted(leased.TaskId, leased.TreeId, leased.LeaseId, 3, false, 1.0));
        worker.Send(second, RequestWork.Instance);
        await Task.Delay(300);
        inference.Reply(new PolicyLoaded(0));

        // The report counts: the worker gets one of the two other tasks, and the iteration ends with them.
        var next = worker.ExpectMsg<SearchTask>(Timeout);
        var other = CreateTestProbe();
        other.Send(second, RequestWork.Instance);
        var last = other.ExpectMsg<SearchTask>(Timeout);
        Assert.Equal(3, new[] { leased.TaskId, next.TaskId, last.TaskId }.Distinct().Count());
        worker.Send(second, new TaskCompleted(next.TaskId, next.TreeId, next.LeaseId, 3, false, 1.0));
        other.Send(second, new TaskCompleted(last.TaskId, last.TreeId, last.LeaseId, 3, false, 1.0));
        Assert.Equal(1, learner.ExpectMsg<TrainIteration>(Timeout).Iteration);
    }

    /// <summary>A one-iteration Game-of-24 campaign of <paramref name="tasks"/> tasks with probes as its learner and
    /// inference actor; the coordinators it makes share the journal.</summary>
    (TestProbe Learner, TestProbe Inference, Func<string, IActorRef> Coordinator) Campaign(string name, int tasks)
    {
        Directory.CreateDirectory(_dir);
        var config = ConfigLoader.Parse(ConfigLoader.Build(null, [$"name={name}", "environment.held-out=10", "eval.greedy=false",
            "iterations.count=1", $"iterations.trees={tasks}"]));
        var context = new CampaignContext(config, new Game24Provider().Create(config.Environment), _dir);
        var learner = CreateTestProbe();
        var inference = CreateTestProbe();
        inference.IgnoreMessages(m => m is GetInferenceStats); // the throughput counters' resets
        return (learner, inference, actorName => Sys.ActorOf(Props.Create(() => new CampaignCoordinator(context, learner.Ref, inference.Ref)), actorName));
    }

    async Task WatchedStop(IActorRef actor)
    {
        Watch(actor);
        Sys.Stop(actor);
        await ExpectTerminatedAsync(actor, Timeout);
        Unwatch(actor);
    }

    public new void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
        base.Dispose();
    }
}

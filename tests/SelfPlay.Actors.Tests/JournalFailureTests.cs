using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence;
using Akka.Persistence.TestKit;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Trees;
using SelfPlay.Samples.Game24;

namespace SelfPlay.Actors.Tests;

/// <summary>Journal writes that fail or are rejected (Akka.Persistence.TestKit's journal): nothing is acknowledged unstored.</summary>
public sealed class JournalFailureTests() : Akka.TestKit.Xunit2.TestKit(Config, "journal-failures")
{
    static readonly Config Config = ConfigurationFactory.ParseString("""
        akka.persistence {
          journal { plugin = "akka.persistence.journal.test", test { class = "Akka.Persistence.TestKit.TestJournal, Akka.Persistence.TestKit", plugin-dispatcher = "akka.actor.default-dispatcher" } }
          snapshot-store { plugin = "akka.persistence.snapshot-store.test", test { class = "Akka.Persistence.TestKit.TestSnapshotStore, Akka.Persistence.TestKit", plugin-dispatcher = "akka.actor.default-dispatcher" } }
        }
        """).WithFallback(ConfigurationFactory.ParseString(SelfPlaySerializer.Hocon));

    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    ITestJournal Journal => TestJournal.FromRef(Persistence.Instance.Apply(Sys).JournalFor(null));

    static PreferenceTree Tree(string task)
    {
        var tree = PreferenceTree.Create(PreferenceTree.MakeId("jf", 1, task), "Input: 1 2 3 4\n");
        (tree.Campaign, tree.Iteration, tree.TaskId) = ("jf", 1, task);
        return tree;
    }

    [Fact]
    public async Task A_tree_the_journal_fails_or_rejects_is_reported_at_once_and_stored_when_retried()
    {
        var replay = Sys.ActorOf(Props.Create(() => new ReplayActor()), "replay");

        await Journal.OnWrite.Fail();
        var failed = await Assert.ThrowsAnyAsync<Exception>(() => replay.Ask<StoreTreeAck>(new StoreTree(Tree("a")), Timeout));
        Assert.Contains("did not store tree", failed.Message);
        await StoppedAsync(Tree("a").TreeId); // a failed write stops the bucket; the next command recreates it

        await Journal.OnWrite.Reject();
        var rejected = await Assert.ThrowsAnyAsync<Exception>(() => replay.Ask<StoreTreeAck>(new StoreTree(Tree("a")), Timeout));
        Assert.Contains("rejected tree", rejected.Message);
        Assert.Null((await replay.Ask<TreeReply>(new GetTree(Tree("a").TreeId), Timeout)).Tree); // nothing half-stored

        await Journal.OnWrite.Pass();
        var ack = await replay.Ask<StoreTreeAck>(new StoreTree(Tree("a")), Timeout); // the retry of the search worker
        Assert.Equal(1, ack.Nodes);
        Assert.NotNull((await replay.Ask<TreeReply>(new GetTree(Tree("a").TreeId), Timeout)).Tree);
    }

    async Task StoppedAsync(string treeId)
    {
        var path = $"/user/replay/{ReplayActor.ChildName(treeId)}";
        await AwaitConditionAsync(async () =>
        {
            try { await Sys.ActorSelection(path).ResolveOne(TimeSpan.FromMilliseconds(200)); return false; }
            catch (ActorNotFoundException) { return true; }
        }, Timeout);
    }

    [Fact]
    public async Task A_coordinator_whose_journal_write_fails_restarts_with_backoff_and_asks_for_the_work_again()
    {
        var config = ConfigLoader.Parse(ConfigLoader.Build(null, ["name=jf", "environment.held-out=10", "eval.greedy=false"]));
        var setup = new Game24Provider().Create(config.Environment);
        var context = new CampaignContext(config, setup, Path.GetTempPath());
        var learner = CreateTestProbe();
        var inference = CreateTestProbe();
        var coordinator = Sys.ActorOf(Akka.Pattern.BackoffSupervisor.Props(Akka.Pattern.Backoff.OnStop(
            Props.Create(() => new CampaignCoordinator(context, learner.Ref, inference.Ref)), "campaign",
            TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(1), 0, -1)));
        var published = new PolicyPublished(0, "/ckpt/v0", "abc", new TrainingReport(1, 0, 1, 1, double.NaN, 0.1));

        coordinator.Tell(StartCampaign.Instance);
        learner.ExpectMsg<RunWarmup>(Timeout);
        await Journal.OnWrite.Fail();
        learner.Reply(published); // its journal write fails: the coordinator stops, and is started again after a backoff
        inference.ExpectNoMsg(TimeSpan.FromSeconds(1)); // an unjournaled policy is not acted on

        await Journal.OnWrite.Pass();
        await AwaitAssertAsync(() =>
        {
            coordinator.Tell(StartCampaign.Instance); // what `selfplay run` repeats
            learner.ExpectMsg<RunWarmup>(TimeSpan.FromMilliseconds(500)); // the warm-up is asked for again, not lost
        }, Timeout);
        learner.Reply(published);
        var load = inference.ExpectMsg<LoadPolicy>(Timeout);
        Assert.Equal(0, load.Version);
    }
}

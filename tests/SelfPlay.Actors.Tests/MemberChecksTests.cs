using Akka.Actor;
using Akka.Configuration;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Search;
using SelfPlay.Core.Trees;
using SelfPlay.Samples.Game24;

namespace SelfPlay.Actors.Tests;

/// <summary>Members are checked: trees are what their id says, requests are bounded, and only the learner publishes.</summary>
public sealed class MemberChecksTests() : Akka.TestKit.Xunit2.TestKit(Config, "member-checks")
{
    static readonly Config Config = ConfigurationFactory.ParseString("""
        akka.persistence.journal.plugin = "akka.persistence.journal.inmem"
        akka.persistence.snapshot-store.plugin = "akka.persistence.snapshot-store.inmem"
        """).WithFallback(ClosedSerialization.Config);

    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    static PreferenceTree Tree(string campaign, int iteration, string task)
    {
        var tree = PreferenceTree.Create(PreferenceTree.MakeId(campaign, iteration, task), "Input: 1 2 3 4\n");
        (tree.Campaign, tree.Iteration, tree.TaskId) = (campaign, iteration, task);
        tree.AddChild(0, new TreeNode { Action = "1 + 2", StepText = "1 + 2 = 3 (left: 3 3 4)\n" });
        return tree;
    }

    [Fact]
    public void Malformed_trees_and_unbounded_requests_are_named_problems()
    {
        Assert.Null(MessageLimits.Problem(new StoreTree(Tree("c", 1, "t"))));
        var foreign = Tree("c", 1, "t");
        foreign.Iteration = 2;
        Assert.Contains("does not belong to campaign c, iteration 2", MessageLimits.Problem(new StoreTree(foreign)));
        var cyclic = Tree("c", 1, "t");
        cyclic.Nodes[1].Parent = 1;
        Assert.Contains("out of order", MessageLimits.Problem(new StoreTree(cyclic)));
        var dangling = Tree("c", 1, "t");
        dangling.Nodes[0].Children.Add(7);
        Assert.Contains("child outside the tree", MessageLimits.Problem(new StoreTree(dangling)));
        var huge = Tree("c", 1, "t");
        for (var i = 0; i < MessageLimits.MaxTreeNodes; i++) huge.AddChild(0, new TreeNode());
        Assert.Contains($"(1..{MessageLimits.MaxTreeNodes})", MessageLimits.Problem(new StoreTree(huge)));

        var many = new ProposeSteps(Enumerable.Range(0, MessageLimits.MaxBatchItems + 1).Select(_ => new ProposalRequest("s", 1, 1, 0)).ToList());
        Assert.Contains("proposal requests in one message", MessageLimits.Problem(many));
        Assert.Contains("proposals asked", MessageLimits.Problem(new ProposeSteps([new ProposalRequest("s", 100_000, 1, 0)])));
        Assert.Contains("longer than", MessageLimits.Problem(new ProposeSteps([new ProposalRequest(new string('x', MessageLimits.MaxTextChars + 1), 1, 1, 0)])));
        Assert.Contains("longer than", MessageLimits.Problem(new VerifyStates("t", "x", [new string('x', MessageLimits.MaxTextChars + 1)])));
    }

    [Fact]
    public async Task The_replay_refuses_a_malformed_tree_and_stores_nothing_for_it()
    {
        var replay = Sys.ActorOf(Props.Create(() => new ReplayActor()), "replay");
        var bad = Tree("c", 1, "t");
        bad.Nodes[1].Parent = 5;
        var refused = await Assert.ThrowsAnyAsync<Exception>(() => replay.Ask<StoreTreeAck>(new StoreTree(bad), Timeout));
        Assert.Contains("out of order", refused.GetBaseException().Message);
        Assert.Null((await replay.Ask<TreeReply>(new GetTree(bad.TreeId), Timeout)).Tree);
        Assert.Equal(2, (await replay.Ask<StoreTreeAck>(new StoreTree(Tree("c", 1, "t")), Timeout)).Nodes); // a good one is stored
    }

    [Fact]
    public void The_coordinator_acts_only_on_the_learners_publications()
    {
        var config = ConfigLoader.Parse(ConfigLoader.Build(null, ["name=mc", "environment.held-out=10", "eval.greedy=false"]));
        var context = new CampaignContext(config, new Game24Provider().Create(config.Environment), Path.GetTempPath());
        var learner = CreateTestProbe();
        var inference = CreateTestProbe();
        var stranger = CreateTestProbe();
        var coordinator = Sys.ActorOf(Props.Create(() => new CampaignCoordinator(context, learner.Ref, inference.Ref, null)));
        var published = new PolicyPublished(0, "/ckpt/v0", "abc", new TrainingReport(1, 0, 1, 1, double.NaN, 0.1));

        coordinator.Tell(StartCampaign.Instance);
        learner.ExpectMsg<RunWarmup>(Timeout);
        coordinator.Tell(published with { Directory = "/somewhere/else" }, stranger.Ref);
        inference.ExpectNoMsg(TimeSpan.FromMilliseconds(500)); // nobody is told to load the stranger's folder
        learner.Reply(published);
        Assert.Equal("/ckpt/v0", inference.ExpectMsg<LoadPolicy>(Timeout).Directory);
    }
}

using System.Text.Json;
using Akka.Actor;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Config;
using SelfPlay.Core.Trees;
using SelfPlay.Tests.Shared;

namespace SelfPlay.Actors.Tests;

public sealed class ReplayTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "selfplay-replay-" + Guid.NewGuid().ToString("N"));
    static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    public ReplayTests() => Directory.CreateDirectory(_dir);

    PersistenceConfig _store = new("sqlite", "");

    ActorSystem NewSystem() =>
        ActorSystem.Create("replay-test", SelfPlayHost.AkkaConfig(_store, _dir, serilog: false));

    async Task OnPostgres() => _store = new PersistenceConfig("postgres", await TestPostgres.NewDatabaseAsync());

    static PreferenceTree Tree(string campaign, int iteration, string task, string firstStep)
    {
        var tree = PreferenceTree.Create(PreferenceTree.MakeId(campaign, iteration, task), "Input: 1 2 3 4\n");
        tree.Campaign = campaign;
        tree.Iteration = iteration;
        tree.TaskId = task;
        tree.AddChild(0, new TreeNode { Action = firstStep, StepText = firstStep + " = x\n", TokenIds = [5, 6], LogProbs = [-0.5f, -1.25f], Visits = 3, Q = 0.75 });
        tree.AddChild(0, new TreeNode { Action = "2 * 3", StepText = "2 * 3 = 6 (left: 1 4 6)\n", IsTerminal = true, TerminalReward = 0, TerminalReason = "dead end" });
        return tree;
    }

    static string Json(PreferenceTree? tree) => JsonSerializer.Serialize(tree);

    [PostgresFact]
    public async Task Trees_survive_a_killed_entity_and_a_restarted_actor_system_on_postgres()
    {
        await OnPostgres();
        await Trees_survive_a_killed_entity_and_a_restarted_actor_system();
    }

    [PostgresFact]
    public async Task Queries_by_tag_return_each_tree_once_with_its_latest_version_on_postgres()
    {
        await OnPostgres();
        await Queries_by_tag_return_each_tree_once_with_its_latest_version();
    }

    [Fact]
    public async Task Trees_survive_a_killed_entity_and_a_restarted_actor_system()
    {
        var tree = Tree("c1", 1, "1-2-3-4", "4 - 1");
        var system = NewSystem();
        try
        {
            var replay = system.ActorOf(Props.Create(() => new ReplayActor()), "replay");
            var ack = await replay.Ask<StoreTreeAck>(new StoreTree(tree), Timeout);
            Assert.Equal(3, ack.Nodes);

            var entity = await system.ActorSelection($"/user/replay/{Uri.EscapeDataString(tree.TreeId)}").ResolveOne(Timeout);
            await entity.GracefulStop(Timeout); // the in-memory state is gone; the next query recovers from SQLite
            var recovered = await replay.Ask<TreeReply>(new GetTree(tree.TreeId), Timeout);
            Assert.Equal(Json(tree), Json(recovered.Tree));
        }
        finally
        {
            await system.Terminate();
        }

        var restarted = NewSystem();
        try
        {
            var replay = restarted.ActorOf(Props.Create(() => new ReplayActor()), "replay");
            var recovered = await replay.Ask<TreeReply>(new GetTree(tree.TreeId), Timeout);
            Assert.Equal(Json(tree), Json(recovered.Tree));
            var missing = await replay.Ask<TreeReply>(new GetTree("c1/1/none/0"), Timeout);
            Assert.Null(missing.Tree);
        }
        finally
        {
            await restarted.Terminate();
        }
    }

    [Fact]
    public async Task Queries_by_tag_return_each_tree_once_with_its_latest_version()
    {
        var system = NewSystem();
        try
        {
            var replay = system.ActorOf(Props.Create(() => new ReplayActor()), "replay");
            await replay.Ask<StoreTreeAck>(new StoreTree(Tree("c2", 1, "a", "1 + 2")), Timeout);
            await replay.Ask<StoreTreeAck>(new StoreTree(Tree("c2", 1, "b", "1 + 3")), Timeout);
            await replay.Ask<StoreTreeAck>(new StoreTree(Tree("c2", 2, "a", "1 + 4")), Timeout);
            await replay.Ask<StoreTreeAck>(new StoreTree(Tree("other", 1, "a", "1 + 5")), Timeout);
            // A re-run of the same task (same deterministic id) replaces the first tree.
            await replay.Ask<StoreTreeAck>(new StoreTree(Tree("c2", 1, "a", "4 - 1")), Timeout);

            var iteration1 = await TreeQueries.IterationTreesAsync(system, "c2", 1);
            Assert.Equal(["c2/1/a/0", "c2/1/b/0"], iteration1.Select(t => t.TreeId).Order());
            Assert.Equal("4 - 1", iteration1.Single(t => t.TaskId == "a").Nodes[1].Action);
            Assert.Equal(3, (await TreeQueries.CampaignTreesAsync(system, "c2")).Count);
            Assert.Single(await TreeQueries.CampaignTreesAsync(system, "other"));
        }
        finally
        {
            await system.Terminate();
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}

using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Akka.Persistence.Journal;
using SelfPlay.Actors.Protocol;
using SelfPlay.Core.Trees;

namespace SelfPlay.Actors.Replay;

/// <summary>
/// One persistent entity per tree. Storing a tree again (a re-run after a lost lease) persists a newer event
/// for the same id, which replaces the old one in state and in every dataset query: trees are never duplicated.
/// Events are tagged by campaign and by iteration, so datasets are built with Persistence.Query.
/// </summary>
public sealed class TreeEntity : ReceivePersistentActor
{
    PreferenceTree? _tree;

    public static string PersistenceIdFor(string treeId) => "tree|" + treeId;
    public static string CampaignTag(string campaign) => "campaign:" + campaign;
    public static string IterationTag(string campaign, int iteration) => $"iteration:{campaign}:{iteration}";

    public override string PersistenceId { get; }

    public TreeEntity(string treeId)
    {
        PersistenceId = PersistenceIdFor(treeId);
        Recover<TreeStored>(e => _tree = e.Tree);
        Command<StoreTree>(cmd =>
        {
            var tree = cmd.Tree;
            var tags = new[] { CampaignTag(tree.Campaign), IterationTag(tree.Campaign, tree.Iteration) };
            Persist(new Tagged(new TreeStored(tree), tags), _ =>
            {
                _tree = tree;
                Sender.Tell(new StoreTreeAck(tree.TreeId, tree.Nodes.Count));
            });
        });
        Command<GetTree>(q => Sender.Tell(new TreeReply(q.TreeId, _tree)));
        Command<ReceiveTimeout>(_ => Context.Stop(Self));
        Context.SetReceiveTimeout(TimeSpan.FromSeconds(30)); // passivate idle trees; they recover on demand
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        // The journal did not take the event: the sender gets no ack, so the task is retried under its lease.
        Context.GetLogger().Error(cause, "could not persist tree {0}", PersistenceId);
        base.OnPersistFailure(cause, @event, sequenceNr);
    }
}

/// <summary>Routes replay commands to the entity of their tree, creating it (and so recovering it) on demand.</summary>
public sealed class ReplayActor : ReceiveActor
{
    public ReplayActor()
    {
        Receive<StoreTree>(cmd => Entity(cmd.Tree.TreeId).Forward(cmd));
        Receive<GetTree>(q => Entity(q.TreeId).Forward(q));
    }

    static IActorRef Entity(string treeId)
    {
        var name = Uri.EscapeDataString(treeId);
        var existing = Context.Child(name);
        return !existing.IsNobody() ? existing : Context.ActorOf(Props.Create(() => new TreeEntity(treeId)), name);
    }
}

using Akka.Actor;
using Akka.Cluster.Sharding;
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
/// A large tree stored again is also saved as a snapshot (the newest replaces the older ones): its recovery then reads
/// one tree instead of every version of it. The events stay, so tag queries are unchanged.
/// </summary>
public sealed class TreeEntity : ReceivePersistentActor
{
    PreferenceTree? _tree;
    IActorRef _storing = ActorRefs.Nobody;

    public static string PersistenceIdFor(string treeId) => "tree|" + treeId;
    public static string CampaignTag(string campaign) => "campaign:" + campaign;
    public static string IterationTag(string campaign, int iteration) => $"iteration:{campaign}:{iteration}";

    public override string PersistenceId { get; }

    public TreeEntity(string treeId) : this(treeId, 0) { }

    /// <param name="snapshotNodes">a re-stored tree of at least this many nodes is snapshotted; 0 = never</param>
    public TreeEntity(string treeId, int snapshotNodes)
    {
        PersistenceId = PersistenceIdFor(treeId);
        Recover<TreeStored>(e => _tree = e.Tree);
        Recover<SnapshotOffer>(o => _tree = ((TreeStored)o.Snapshot).Tree);
        Command<StoreTree>(cmd =>
        {
            if (PersistenceIdFor(cmd.Tree.TreeId) != PersistenceId)
            {
                Context.GetLogger().Warning("refused StoreTree from {0}: tree {1} sent to entity {2}", Sender.Path, cmd.Tree.TreeId, PersistenceId);
                Sender.Tell(new Status.Failure(new InvalidDataException($"refused: tree {cmd.Tree.TreeId} sent to entity {PersistenceId}")));
                return;
            }
            if (MessageLimits.Refused(cmd, Sender, Context.GetLogger())) return;
            var tree = cmd.Tree;
            var tags = new[] { CampaignTag(tree.Campaign), IterationTag(tree.Campaign, tree.Iteration) };
            _storing = Sender;
            Persist(new Tagged(new TreeStored(tree), tags), _ =>
            {
                _tree = tree;
                Sender.Tell(new StoreTreeAck(tree.TreeId, tree.Nodes.Count));
                // Only a second or later version pays: a tree stored once recovers from its one event anyway.
                if (snapshotNodes > 0 && LastSequenceNr >= 2 && tree.Nodes.Count >= snapshotNodes) SaveSnapshot(new TreeStored(tree));
            });
        });
        Command<SaveSnapshotSuccess>(s => DeleteSnapshots(new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1)));
        // Without the snapshot the tree still recovers, from its events.
        Command<SaveSnapshotFailure>(f => Context.GetLogger().Warning("snapshot of {0} not saved: {1}", PersistenceId, f.Cause.Message));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(f => Context.GetLogger().Warning("old snapshots of {0} not deleted: {1}", PersistenceId, f.Cause.Message));
        Command<GetTree>(q => Sender.Tell(new TreeReply(q.TreeId, _tree)));
        // Passivate idle trees (they recover on demand): through the parent, so that a sharded, remembered entity
        // is forgotten rather than restarted.
        Command<ReceiveTimeout>(_ => Context.Parent.Tell(new Passivate(PoisonPill.Instance)));
        Context.SetReceiveTimeout(TimeSpan.FromSeconds(30));
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        // The journal did not take the event: the sender hears so at once (the task is retried with backoff) and this
        // entity stops; the next command recreates it from what the journal holds. Nothing is acknowledged unstored.
        Context.GetLogger().Error(cause, "could not persist tree {0}", PersistenceId);
        _storing.Tell(new Status.Failure(new IOException($"the journal did not store tree {PersistenceId}: {cause.Message}")));
        base.OnPersistFailure(cause, @event, sequenceNr);
    }

    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        // The journal refused the event (the entity keeps running with its previous tree): the sender hears so too.
        Context.GetLogger().Error(cause, "the journal rejected tree {0}", PersistenceId);
        _storing.Tell(new Status.Failure(new IOException($"the journal rejected tree {PersistenceId}: {cause.Message}")));
    }
}

/// <summary>Routes replay commands to the entity of their tree, creating it (and so recovering it) on demand.</summary>
public sealed class ReplayActor : ReceiveActor
{
    readonly int _snapshotNodes;

    public ReplayActor() : this(0) { }

    public ReplayActor(int snapshotNodes)
    {
        _snapshotNodes = snapshotNodes;
        Receive<StoreTree>(cmd => Entity(cmd.Tree.TreeId).Forward(cmd));
        Receive<GetTree>(q => Entity(q.TreeId).Forward(q));
        Receive<Passivate>(p => Sender.Tell(p.StopMessage));
    }

    IActorRef Entity(string treeId)
    {
        var name = Uri.EscapeDataString(treeId);
        var existing = Context.Child(name);
        var snapshotNodes = _snapshotNodes;
        return !existing.IsNobody() ? existing : Context.ActorOf(Props.Create(() => new TreeEntity(treeId, snapshotNodes)), name);
    }
}

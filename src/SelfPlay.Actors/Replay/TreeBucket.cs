using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using Akka.Persistence;
using Akka.Persistence.Journal;
using SelfPlay.Actors.Protocol;
using SelfPlay.Core.Trees;

namespace SelfPlay.Actors.Replay;

/// <summary>
/// One persistent entity per bucket of trees: the trees of one campaign iteration are spread over
/// <see cref="BucketsPerIteration"/> buckets by a stable hash of their id, so a tree stays addressable by its id
/// (<see cref="BucketOf"/>) while the journal sees few entities. Trees that arrive while a write is in flight are
/// written together in the next one (one <see cref="TreesStored"/> event: one journal row, one round trip), and a
/// bucket recovers once for many trees: a store no longer pays a recovery and a round trip of its own.
/// Storing a tree again (a re-run after a lost lease) persists a newer event for the same id, which replaces the old
/// one in state and in every dataset query (the newest by journal order wins): trees are never duplicated. Events are
/// tagged by campaign and by iteration, so datasets are built with Persistence.Query, as before.
/// </summary>
/// <remarks>Journals written before buckets hold one entity per tree ("tree|ID"): their trees are read by the same
/// queries, and <see cref="GetTree"/> falls back to such an entity's events.</remarks>
public sealed class TreeBucket : ReceivePersistentActor
{
    /// <summary>Fixed: a tree's bucket must not change between runs of one campaign.</summary>
    public const int BucketsPerIteration = 16;

    /// <summary>At most this many trees, and (unless one tree is larger) nodes, in one event: rows of a few MB.</summary>
    const int MaxTreesPerWrite = 200, MaxNodesPerWrite = 50_000;

    readonly Dictionary<string, PreferenceTree> _trees = new(StringComparer.Ordinal);
    readonly List<(PreferenceTree Tree, IActorRef Sender)> _pending = [];
    readonly List<(PreferenceTree Tree, IActorRef Sender)> _inFlight = [];
    readonly int _snapshotNodes;
    /// <summary>Nodes of replaced versions that a recovery would read since the last snapshot.</summary>
    long _supersededNodes;

    public static string PersistenceIdFor(string bucketId) => "trees|" + bucketId;
    public static string LegacyPersistenceIdFor(string treeId) => "tree|" + treeId;
    public static string CampaignTag(string campaign) => "campaign:" + campaign;
    public static string IterationTag(string campaign, int iteration) => $"iteration:{campaign}:{iteration}";

    /// <summary>"CAMPAIGN/ITERATION/K" for a tree id "CAMPAIGN/ITERATION/TASK/ATTEMPT" (campaign names have no '/').</summary>
    public static string BucketOf(string treeId)
    {
        var parts = treeId.Split('/', 3);
        var prefix = parts.Length == 3 ? parts[0] + "/" + parts[1] : "_";
        // FNV-1a: string.GetHashCode differs between processes.
        var hash = 2166136261u;
        foreach (var c in treeId) hash = (hash ^ c) * 16777619u;
        return $"{prefix}/{hash % BucketsPerIteration}";
    }

    /// <summary>The ids of every bucket an iteration's trees go to (<see cref="BucketOf"/> of its tree ids).</summary>
    public static IEnumerable<string> BucketsOfIteration(string campaign, int iteration) =>
        Enumerable.Range(0, BucketsPerIteration).Select(k => $"{campaign}/{iteration}/{k}");

    /// <summary>
    /// Starts an iteration's buckets through the replay's shard region before its first trees arrive: each new shard is
    /// allocated (a coordinator write), loads and writes its remembered entities, and its bucket recovers, one after
    /// another, which in a fresh process cost more than its first 2,000 trees' writes (`bench persistence`). A
    /// campaign does this while the iteration's first searches run. Completes once every bucket has recovered; faults
    /// when one did not answer within <paramref name="timeout"/>. (Not sharding's StartEntity: started for 16 buckets at
    /// once, Akka.NET 1.5's shards dropped some of their remember-entities acknowledgements as entity messages.)
    /// </summary>
    public static Task<BucketOpen[]> OpenIterationAsync(IActorRef replayRegion, string campaign, int iteration, TimeSpan timeout) =>
        Task.WhenAll(BucketsOfIteration(campaign, iteration).Select(bucket => replayRegion.Ask<BucketOpen>(new OpenBucket(bucket), timeout)));

    public override string PersistenceId { get; }

    public TreeBucket(string bucketId) : this(bucketId, 0) { }

    /// <param name="snapshotNodes">snapshot the bucket once replaced versions of at least this many nodes sit in its journal
    /// since the last snapshot (a recovery would read them for nothing); 0 = never</param>
    public TreeBucket(string bucketId, int snapshotNodes)
    {
        PersistenceId = PersistenceIdFor(bucketId);
        _snapshotNodes = snapshotNodes;
        Recover<TreesStored>(e =>
        {
            foreach (var tree in e.Trees) Apply(tree);
        });
        Recover<TreeStored>(e => Apply(e.Tree)); // one tree per event, as the first buckets wrote
        Recover<SnapshotOffer>(o =>
        {
            foreach (var tree in ((TreeBucketSnapshot)o.Snapshot).Trees) _trees[tree.TreeId] = tree;
        });
        Command<StoreTree>(cmd =>
        {
            if (PersistenceIdFor(BucketOf(cmd.Tree.TreeId)) != PersistenceId)
            {
                Context.GetLogger().Warning("refused StoreTree from {Sender}: tree {TreeId} sent to entity {PersistenceId}", Sender.Path, cmd.Tree.TreeId, PersistenceId);
                Sender.Tell(new Status.Failure(new InvalidDataException($"refused: tree {cmd.Tree.TreeId} sent to entity {PersistenceId}")));
                return;
            }
            if (MessageLimits.Refused(cmd, Sender, Context.GetLogger())) return;
            _pending.Add((cmd.Tree, Sender));
            if (_inFlight.Count == 0) WritePending();
        });
        Command<OpenBucket>(o => Sender.Tell(new BucketOpen(o.BucketId, _trees.Count))); // recovered: commands come after
        Command<GetTree>(q =>
        {
            if (_trees.TryGetValue(q.TreeId, out var tree)) Sender.Tell(new TreeReply(q.TreeId, tree));
            else Context.ActorOf(Props.Create(() => new LegacyTreeReader(q.TreeId, Sender)));
        });
        Command<SaveSnapshotSuccess>(s => DeleteSnapshots(new SnapshotSelectionCriteria(s.Metadata.SequenceNr - 1)));
        // Without the snapshot the bucket still recovers, from its events.
        Command<SaveSnapshotFailure>(f => Context.GetLogger().Warning("snapshot of {PersistenceId} not saved: {Error}", PersistenceId, f.Cause.Message));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(f => Context.GetLogger().Warning("old snapshots of {PersistenceId} not deleted: {Error}", PersistenceId, f.Cause.Message));
        // Passivate an idle bucket (it recovers on demand): through the parent, so that a sharded, remembered entity is
        // forgotten rather than restarted. Never with a write in flight.
        Command<ReceiveTimeout>(_ =>
        {
            if (_inFlight.Count == 0 && _pending.Count == 0) Context.Parent.Tell(new Passivate(PoisonPill.Instance));
        });
        Context.SetReceiveTimeout(TimeSpan.FromSeconds(30));
    }

    static bool Identical(PreferenceTree a, PreferenceTree b) =>
        a.CreatedAtUtc == b.CreatedAtUtc && a.Nodes.Count == b.Nodes.Count && TreeBinary.Encode(a).AsSpan().SequenceEqual(TreeBinary.Encode(b));

    void Apply(PreferenceTree tree)
    {
        if (_trees.TryGetValue(tree.TreeId, out var replaced)) _supersededNodes += replaced.Nodes.Count;
        _trees[tree.TreeId] = tree;
    }

    /// <summary>Everything that arrived since the last write (up to a size), as one event: one journal row, one
    /// round trip; each sender is acknowledged once it is stored.</summary>
    void WritePending()
    {
        // A copy of a tree already stored (a store retried after a late acknowledgement) is acknowledged unwritten.
        _pending.RemoveAll(p =>
        {
            if (!_trees.TryGetValue(p.Tree.TreeId, out var stored) || !Identical(stored, p.Tree)) return false;
            p.Sender.Tell(new StoreTreeAck(p.Tree.TreeId, p.Tree.Nodes.Count));
            return true;
        });
        if (_pending.Count == 0) return;
        var (take, nodes) = (0, 0);
        while (take < _pending.Count && take < MaxTreesPerWrite && (take == 0 || nodes + _pending[take].Tree.Nodes.Count <= MaxNodesPerWrite))
            nodes += _pending[take++].Tree.Nodes.Count;
        _inFlight.AddRange(_pending.Take(take));
        _pending.RemoveRange(0, take);
        // Copies within the write go in once; each sender is acknowledged.
        var trees = new List<PreferenceTree>();
        var byId = new Dictionary<string, List<PreferenceTree>>(StringComparer.Ordinal);
        foreach (var (tree, _) in _inFlight)
        {
            if (!byId.TryGetValue(tree.TreeId, out var versions)) byId[tree.TreeId] = versions = [];
            else if (versions.Any(t => Identical(t, tree))) continue;
            versions.Add(tree);
            trees.Add(tree);
        }
        var first = trees[0]; // a bucket holds the trees of one campaign iteration
        // Encoded here, on this bucket's turn of the thread pool, not on the journal's one actor: the buckets of an
        // iteration encode in parallel while the journal writes.
        var stored = new TreesStored(trees) { Encoded = TreeBinary.EncodeMany(trees) };
        PersistAsync(new Tagged(stored, [CampaignTag(first.Campaign), IterationTag(first.Campaign, first.Iteration)]), _ =>
        {
            foreach (var tree in trees) Apply(tree);
            foreach (var (tree, sender) in _inFlight) sender.Tell(new StoreTreeAck(tree.TreeId, tree.Nodes.Count));
            _inFlight.Clear();
            WriteDone();
        });
    }

    void WriteDone()
    {
        if (_snapshotNodes > 0 && _supersededNodes >= _snapshotNodes)
        {
            SaveSnapshot(new TreeBucketSnapshot([.. _trees.Values]));
            _supersededNodes = 0;
        }
        if (_pending.Count > 0) WritePending();
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        // The journal did not take the write: every waiting sender hears so at once (their tasks are retried with
        // backoff) and this bucket stops; the next command recreates it from what the journal holds. Nothing is
        // acknowledged unstored.
        Context.GetLogger().Error(cause, "could not persist trees of {PersistenceId}", PersistenceId);
        foreach (var (tree, sender) in _inFlight.Concat(_pending))
            sender.Tell(new Status.Failure(new IOException($"the journal did not store tree {tree.TreeId}: {cause.Message}")));
        _inFlight.Clear();
        _pending.Clear();
        base.OnPersistFailure(cause, @event, sequenceNr);
    }

    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        // The journal refused the write (the bucket keeps running with its previous trees): its senders hear so too.
        Context.GetLogger().Error(cause, "the journal rejected trees of {PersistenceId}", PersistenceId);
        foreach (var (tree, sender) in _inFlight)
            sender.Tell(new Status.Failure(new IOException($"the journal rejected tree {tree.TreeId}: {cause.Message}")));
        _inFlight.Clear();
        WriteDone();
    }
}

/// <summary>
/// Answers a <see cref="GetTree"/> for a tree stored before buckets existed, from the events (or the snapshot) of its
/// own entity ("tree|ID"), then stops: through the journal plugin, so it works with any journal.
/// </summary>
sealed class LegacyTreeReader : ReceivePersistentActor
{
    readonly IActorRef _replyTo;
    PreferenceTree? _tree;

    public override string PersistenceId { get; }

    public LegacyTreeReader(string treeId, IActorRef replyTo)
    {
        _replyTo = replyTo;
        PersistenceId = TreeBucket.LegacyPersistenceIdFor(treeId);
        Recover<TreeStored>(e => _tree = e.Tree);
        Recover<SnapshotOffer>(o => _tree = ((TreeStored)o.Snapshot).Tree);
        Recover<RecoveryCompleted>(_ =>
        {
            replyTo.Tell(new TreeReply(treeId, _tree));
            Context.Stop(Self);
        });
    }

    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        _replyTo.Tell(new Status.Failure(reason));
        base.OnRecoveryFailure(reason, message);
    }
}

/// <summary>Routes replay commands to the bucket of their tree, creating it (and so recovering it) on demand: the
/// unsharded replay of a one-process run and of the tests.</summary>
public sealed class ReplayActor : ReceiveActor
{
    readonly int _snapshotNodes;

    public ReplayActor() : this(0) { }

    public ReplayActor(int snapshotNodes)
    {
        _snapshotNodes = snapshotNodes;
        Receive<StoreTree>(cmd => Bucket(cmd.Tree.TreeId).Forward(cmd));
        Receive<GetTree>(q => Bucket(q.TreeId).Forward(q));
        Receive<OpenBucket>(o => BucketNamed(o.BucketId).Forward(o));
        Receive<Passivate>(p => Sender.Tell(p.StopMessage));
    }

    /// <summary>The child name of a tree's bucket (for tests and benches that stop it).</summary>
    public static string ChildName(string treeId) => Uri.EscapeDataString(TreeBucket.BucketOf(treeId));

    IActorRef Bucket(string treeId) => BucketNamed(TreeBucket.BucketOf(treeId));

    IActorRef BucketNamed(string bucketId)
    {
        var (name, snapshotNodes) = (Uri.EscapeDataString(bucketId), _snapshotNodes);
        var existing = Context.Child(name);
        return !existing.IsNobody() ? existing : Context.ActorOf(Props.Create(() => new TreeBucket(bucketId, snapshotNodes)), name);
    }
}

using Akka.Actor;
using Akka.Event;
using Akka.Persistence.Query;
using Akka.Persistence.Sql.Query;
using Akka.Streams;
using SelfPlay.Actors.Protocol;
using SelfPlay.Core.Trees;

namespace SelfPlay.Actors.Replay;

/// <summary>Datasets from the journal through Persistence.Query (by tag), never by scanning tables.</summary>
public static class TreeQueries
{
    /// <summary>
    /// The latest version of every tree stored under the tag (the newest in journal order, whichever entity stored it:
    /// a bucket, or the per-tree entity of an older journal), in tree-id order: not in journal order, which depends on
    /// which search finished first, so the datasets built from them (extraction draws, shuffles) do not.
    /// </summary>
    public static async Task<IReadOnlyList<PreferenceTree>> CurrentTreesAsync(ActorSystem system, string tag, CancellationToken ct = default)
    {
        var journal = ReadJournal(system);
        // The newest by (journal ordering, place in the event): a bucket's event holds several trees in store order.
        var latest = new Dictionary<string, (long Ordering, int Index, PreferenceTree Tree)>(StringComparer.Ordinal);
        void Keep(long ordering, int index, PreferenceTree tree)
        {
            if (!latest.TryGetValue(tree.TreeId, out var seen) || (ordering, index).CompareTo((seen.Ordering, seen.Index)) > 0)
                latest[tree.TreeId] = (ordering, index, tree);
        }
        await journal.CurrentEventsByTag(tag, Offset.NoOffset())
            .RunForeach(envelope =>
            {
                if (envelope.Event is RefusedPayload refused)
                    system.Log.Warning("journal row {PersistenceId} #{SequenceNr} skipped: {Reason}", envelope.PersistenceId, envelope.SequenceNr, refused.Reason);
                var ordering = ((Sequence)envelope.Offset).Value;
                if (envelope.Event is TreeStored stored) Keep(ordering, 0, stored.Tree);
                if (envelope.Event is TreesStored batch)
                    for (var i = 0; i < batch.Trees.Count; i++) Keep(ordering, i, batch.Trees[i]);
            }, system.Materializer());
        ct.ThrowIfCancellationRequested();
        return latest.Values.Select(v => v.Tree).OrderBy(t => t.TreeId, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The SQL read journal. Its constructor asks the journal for its settings with a 5 s time-out, which a cold journal
    /// (schema creation, first connection) on a busy machine can miss: the request is repeated for up to two minutes.
    /// </summary>
    public static SqlReadJournal ReadJournal(ActorSystem system)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return PersistenceQuery.Get(system).ReadJournalFor<SqlReadJournal>(SqlReadJournal.Identifier);
            }
            catch (Exception e) when (attempt < 24 && e.GetBaseException() is AskTimeoutException) { }
        }
    }

    public static Task<IReadOnlyList<PreferenceTree>> IterationTreesAsync(ActorSystem system, string campaign, int iteration, CancellationToken ct = default) =>
        CurrentTreesAsync(system, TreeBucket.IterationTag(campaign, iteration), ct);

    public static Task<IReadOnlyList<PreferenceTree>> CampaignTreesAsync(ActorSystem system, string campaign, CancellationToken ct = default) =>
        CurrentTreesAsync(system, TreeBucket.CampaignTag(campaign), ct);
}

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
        var latest = new Dictionary<string, (long Ordering, PreferenceTree Tree)>(StringComparer.Ordinal);
        await journal.CurrentEventsByTag(tag, Offset.NoOffset())
            .RunForeach(envelope =>
            {
                if (envelope.Event is RefusedPayload refused)
                    system.Log.Warning("journal row {0} #{1} skipped: {2}", envelope.PersistenceId, envelope.SequenceNr, refused.Reason);
                if (envelope.Event is not TreeStored stored) return;
                var ordering = ((Sequence)envelope.Offset).Value;
                latest.TryGetValue(stored.Tree.TreeId, out var seen);
                if (seen.Tree is null || ordering > seen.Ordering) latest[stored.Tree.TreeId] = (ordering, stored.Tree);
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

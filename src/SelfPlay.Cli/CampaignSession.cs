using Akka.Actor;
using Akka.Persistence.Query;
using Akka.Persistence.Sql.Query;
using Akka.Streams;
using Akka.Streams.Dsl;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Replay;

namespace SelfPlay.Cli;

/// <summary>
/// The ActorSystem a `selfplay run` works through: every role in this process (a one-node cluster), or, with
/// --seed, a member without roles attached to a running cluster whose coordinator runs the campaign.
/// </summary>
public sealed class CampaignSession : IAsyncDisposable
{
    public required ActorSystem System { get; init; }
    public required IActorRef Coordinator { get; init; }

    /// <param name="hostname">the address this process advertises when it attaches to a cluster (--seed)</param>
    public static async Task<CampaignSession> StartAsync(CampaignContext context, IReadOnlyList<string> seeds, bool resume, string hostname)
    {
        var node = seeds.Count == 0
            ? NodeOptions.For(context.Config, NodeOptions.AllRoles, [])
            : NodeOptions.For(context.Config, [], seeds, hostname);
        SelfPlayHost.WarnAboutExposure(node);
        // Alone, this process runs every role; attached to a cluster (--seed), none: the cluster's coordinator runs the campaign.
        var system = SelfPlayHost.CreateNode(context.Config.Persistence, context.RunDir, node, campaign: seeds.Count == 0 ? context : null);
        // The start-up timeline in the log (actor system, member up, journal checked), next to the coordinator's
        // phases and first lease: where a short campaign's seconds go.
        Serilog.Log.Information("start-up: actor system created");
        Akka.Cluster.Cluster.Get(system).RegisterOnMemberUp(() => Serilog.Log.Information("start-up: cluster member up"));
        // The journal's first use (schema, first query: about a second of JIT) overlaps the start of the roles.
        var journalHolds = Task.Run(() => JournalHoldsAsync(system, context.Config.Name));
        var coordinator = seeds.Count == 0 ? SelfPlayHost.Actors(system).Coordinator : SelfPlayHost.CoordinatorProxy(system);
        var session = new CampaignSession { System = system, Coordinator = coordinator };
        try
        {
            var exists = await journalHolds;
            Serilog.Log.Information("start-up: journal checked");
            if (resume && !exists) throw new UsageException($"the journal holds no campaign '{context.Config.Name}' to resume");
            if (!resume && exists)
                throw new UsageException($"the journal already holds a campaign '{context.Config.Name}': resume it (--resume) or choose another name");
        }
        catch
        {
            await session.DisposeAsync();
            throw;
        }
        var printer = system.ActorOf(Props.Create(() => new ProgressPrinter()), "progress");
        system.EventStream.Subscribe(printer, typeof(CampaignProgress));
        if (seeds.Count > 0) // repeated for the same reason as the wait below; the coordinator keeps each watcher once
            system.Scheduler.ScheduleTellRepeatedly(TimeSpan.Zero, TimeSpan.FromSeconds(10), coordinator, WatchProgress.Instance, printer);
        // Repeated: a coordinator that restarted before its first journal entry waits for it again. A recovered,
        // unfinished campaign resumes by itself; then this changes nothing.
        system.Scheduler.ScheduleTellRepeatedly(TimeSpan.Zero, TimeSpan.FromSeconds(10), coordinator, StartCampaign.Instance, ActorRefs.NoSender);
        return session;
    }

    /// <summary>Whether the coordinator's journal has events for the campaign (Persistence.Query, by persistence id).</summary>
    static async Task<bool> JournalHoldsAsync(ActorSystem system, string campaign)
    {
        var journal = TreeQueries.ReadJournal(system);
        var events = await journal.CurrentEventsByPersistenceId(CampaignCoordinator.PersistenceIdFor(campaign), 0, long.MaxValue)
            .Take(1).RunAggregate(0, (n, _) => n + 1, system.Materializer());
        return events > 0;
    }

    /// <summary>The campaign's end, or "interrupted" when the ActorSystem stops first (SIGTERM runs its coordinated shutdown).</summary>
    /// <remarks> The question is asked again every few seconds: a coordinator that restarted (journal outage) or moved to another
    /// node does not know the earlier askers.</remarks>
    public async Task<CampaignFinished> WaitAsync(CancellationToken cancel)
    {
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            var finished = Coordinator.Ask<CampaignFinished>(WaitForCompletion.Instance, TimeSpan.FromSeconds(5), cancel);
            var first = await Task.WhenAny(finished, System.WhenTerminated);
            if (first != finished) return new CampaignFinished("interrupted", "the actor system stopped before the campaign ended");
            try { return await finished; }
            catch (AskTimeoutException) { }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await CoordinatedShutdown.Get(System).Run(CoordinatedShutdown.ClrExitReason.Instance);
        Serilog.Log.Information("shut-down: actor system terminated");
    }
}

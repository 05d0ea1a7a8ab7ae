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
        ActorSystem system;
        IActorRef coordinator;
        if (seeds.Count == 0)
        {
            var actors = SelfPlayHost.Start(context);
            (system, coordinator) = (actors.System, actors.Coordinator);
        }
        else
        {
            system = SelfPlayHost.CreateNode(context.Config.Persistence, context.RunDir, new NodeOptions([], seeds, hostname));
            coordinator = SelfPlayHost.CoordinatorProxy(system);
        }
        var session = new CampaignSession { System = system, Coordinator = coordinator };
        try
        {
            var exists = await JournalHoldsAsync(system, context.Config.Name);
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

    public async ValueTask DisposeAsync() => await CoordinatedShutdown.Get(System).Run(CoordinatedShutdown.ClrExitReason.Instance);
}

using Akka.Actor;
using Akka.Event;
using SelfPlay.Actors.Protocol;

namespace SelfPlay.Actors.Campaign;

/// <summary>Who hears how the campaign goes: the event stream, the actors that watch its progress or wait for its end
/// (the CLI), and progress.json for other processes.</summary>
public sealed class CampaignAudience(EventStream events, CampaignFiles files)
{
    readonly List<IActorRef> _waiters = [], _watchers = [];

    /// <summary>The waiter hears the end (now, when the campaign has ended).</summary>
    public void Wait(IActorRef waiter, CampaignFinished? finished)
    {
        if (finished is not null) waiter.Tell(finished);
        else _waiters.Add(waiter);
    }

    /// <summary>The watcher hears every progress and the end.</summary>
    public void Watch(IActorRef watcher)
    {
        if (!_watchers.Contains(watcher)) _watchers.Add(watcher);
    }

    public void Progress(CampaignProgress progress)
    {
        events.Publish(progress);
        foreach (var watcher in _watchers) watcher.Tell(progress);
        files.Progress(progress, force: progress.Done == 0 || progress.Done >= progress.Total);
    }

    public void Finished(CampaignFinished finished, int iteration)
    {
        files.Progress(new CampaignProgress(finished.Status, iteration, 1, 1), force: true); // the live phase ends with the campaign
        events.Publish(finished);
        foreach (var waiter in _waiters.Concat(_watchers)) waiter.Tell(finished);
        _waiters.Clear();
    }
}

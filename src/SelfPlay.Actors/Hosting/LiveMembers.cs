using Akka.Actor;
using Akka.Cluster;

namespace SelfPlay.Actors.Hosting;

public static class LiveMembers
{
    /// <summary>The actor at a journaled path, if its node is still a member (up, weakly up or joining). An unreachable
    /// member counts: under load a heartbeat pause marks a live node unreachable for a moment, and treating it as dead
    /// had its tasks searched twice; a node that is really dead is downed, and the watch on its actor hands its tasks
    /// out then.</summary>
    public static IActorRef? Resolve(ActorSystem system, string path)
    {
        var provider = ((ExtendedActorSystem)system).Provider;
        IActorRef actor;
        try { actor = provider.ResolveActorRef(path); }
        catch (Exception e) when (e is ArgumentException or FormatException or UriFormatException) { return null; }
        if (actor.IsNobody()) return null;
        if (provider is not ClusterActorRefProvider) return actor;
        var state = Cluster.Get(system).State;
        var member = state.Members.FirstOrDefault(m => m.Address.Equals(actor.Path.Address));
        return member is { Status: MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Joining } ? actor : null;
    }
}

using Akka.Actor;
using Akka.Cluster;

namespace SelfPlay.Actors.Hosting;

public static class LiveMembers
{
    /// <summary>The actor at a journaled path, if it can still answer: on a cluster, its node is an up, reachable member
    /// (a dead local actor, or a later death, is seen by watching it).</summary>
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
        return member is { Status: MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Joining } && !state.Unreachable.Contains(member) ? actor : null;
    }
}

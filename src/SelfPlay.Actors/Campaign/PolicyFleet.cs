using Akka.Actor;
using SelfPlay.Actors.Protocol;

namespace SelfPlay.Actors.Campaign;

/// <summary>
/// The search nodes' inference and critic actors and the version each has loaded (-1 until its first load): the
/// coordinator has them load every published version, and a node's workers get tasks only while the actors of their
/// node (same address) hold the current one. Called from the coordinator's message handlers: what it tells is sent as the coordinator.
/// </summary>
public sealed class PolicyFleet
{
    readonly Dictionary<IActorRef, int> _policies = [], _critics = []; // critics: search.critic = value | prm

    public IEnumerable<IActorRef> Inference => _policies.Keys;

    /// <summary>Whether the inference actor is new; a new one is told to load the current policy.</summary>
    public bool RegisterInference(IActorRef actor, PolicyPublished? current)
    {
        if (!_policies.TryAdd(actor, -1)) return false;
        if (current is { } p) actor.Tell(new LoadPolicy(p.Version, p.Directory, p.Sha256));
        return true;
    }

    /// <summary>Whether the critic actor is new; a new one is told to load the current critic.</summary>
    public bool RegisterCritic(IActorRef actor, PolicyPublished? current)
    {
        if (!_critics.TryAdd(actor, -1)) return false;
        if (current?.Critic is { } c) actor.Tell(new LoadCritic(c.Version, c.Directory, c.Sha256));
        return true;
    }

    /// <summary>Every registered actor loads the published policy (and its critic).</summary>
    public void Load(PolicyPublished p)
    {
        foreach (var inference in _policies.Keys) inference.Tell(new LoadPolicy(p.Version, p.Directory, p.Sha256));
        if (p.Critic is { } c)
            foreach (var critic in _critics.Keys) critic.Tell(new LoadCritic(c.Version, c.Directory, c.Sha256));
    }

    /// <summary>Whether the actor was registered (a load answer from an unknown actor changes nothing).</summary>
    public bool PolicyLoaded(IActorRef actor, int version) => Loaded(_policies, actor, version);
    public bool CriticLoaded(IActorRef actor, int version) => Loaded(_critics, actor, version);

    static bool Loaded(Dictionary<IActorRef, int> versions, IActorRef actor, int version)
    {
        if (!versions.ContainsKey(actor)) return false;
        versions[actor] = version;
        return true;
    }

    public bool RemoveInference(IActorRef actor) => _policies.Remove(actor);
    public bool RemoveCritic(IActorRef actor) => _critics.Remove(actor);

    /// <summary>Whether the node's inference holds the current policy, and its critic the current critic once one is trained.</summary>
    public bool Ready(Address node, PolicyPublished? current) =>
        current is { } p && _policies.Any(kv => kv.Value == p.Version && kv.Key.Path.Address.Equals(node))
        && (p.Critic is not { } critic || _critics.Any(kv => kv.Value == critic.Version && kv.Key.Path.Address.Equals(node)));
}

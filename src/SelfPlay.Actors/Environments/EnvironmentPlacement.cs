using Akka.Actor;
using Akka.Cluster.Routing;
using Akka.Routing;
using SelfPlay.Core.Environments;

namespace SelfPlay.Actors.Environments;

/// <summary>
/// Where environment actors run (actors.environment-placement): "local", a pool on every search node; "cluster", on
/// the members with the <see cref="Role"/> role, reached through a cluster-aware group router that follows membership
/// (a search node that has the role too also uses its own).
/// </summary>
public static class EnvironmentPlacement
{
    public const string Role = "environment";
    public static readonly IReadOnlyList<string> Names = ["local", "cluster"];

    /// <summary>Every node that hosts environment actors names them the same, so routers elsewhere find them by path.</summary>
    public static IReadOnlyList<string> Paths(int count) => Enumerable.Range(0, count).Select(i => $"/user/environment-{i}").ToList();

    /// <summary>Whether a node with these roles hosts environment actors under this placement.</summary>
    public static bool Hosts(string placement, IReadOnlyCollection<string> roles) =>
        placement == "cluster" ? roles.Contains(Role) : roles.Contains("search");

    /// <summary>Starts <paramref name="count"/> environment actors on this node (at <see cref="Paths"/>).</summary>
    public static void StartActors(ActorSystem system, IEnvironment environment, int count, bool scoreSteps = false)
    {
        for (var i = 0; i < count; i++) system.ActorOf(Props.Create(() => new EnvironmentActor(environment, scoreSteps)), $"environment-{i}");
    }

    /// <summary>The router a search node sends its steps to: round-robin over this node's actors, or over those of every environment member.</summary>
    public static IActorRef Router(ActorSystem system, string placement, int count)
    {
        var paths = Paths(count);
        Group group = placement == "cluster"
            ? new ClusterRouterGroup(new RoundRobinGroup(paths), new ClusterRouterGroupSettings(10_000, paths, allowLocalRoutees: true, useRole: Role))
            : new RoundRobinGroup(paths);
        return system.ActorOf(Props.Empty.WithRouter(group), "environment-router");
    }
}

using Akka.Actor;
using SelfPlay.Actors.Protocol;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;

namespace SelfPlay.Actors.Search;

/// <summary>Scores new nodes for the searches with the critic that search.critic names (the verifier, or an LLM).</summary>
public sealed class CriticActor : ReceiveActor
{
    public CriticActor(INodeEvaluator evaluator)
    {
        ReceiveAsync<ScoreNodes>(async request =>
        {
            var sender = Sender;
            try
            {
                var values = await evaluator.EvaluateAsync(new EnvTask(request.TaskId, request.TaskInput), request.Nodes);
                sender.Tell(new NodesScored(values));
            }
            catch (Exception e)
            {
                sender.Tell(new Status.Failure(e));
            }
        });
    }
}

/// <summary>The search's evaluator backed by the critic actor.</summary>
public sealed class ActorNodeEvaluator(IActorRef critic, string name, TimeSpan timeout) : INodeEvaluator
{
    public string Name => name;

    public async Task<IReadOnlyList<double>> EvaluateAsync(EnvTask task, IReadOnlyList<NodeToScore> nodes, CancellationToken cancellationToken = default) =>
        (await critic.Ask<NodesScored>(new ScoreNodes(task.Id, task.Input, nodes), timeout, cancellationToken)).Values;
}

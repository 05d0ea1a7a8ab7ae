using System.Text.Json;

namespace SelfPlay.Actors.Campaign;

/// <summary>One greedy held-out episode of a campaign's evaluation, as written to RUN_DIR/eval/vN.jsonl.</summary>
public sealed record HeldOutEpisode(string TaskId, string Input, bool Solved, string State)
{
    /// <summary>Writes the episodes in the held-out split's order (they finish in any order), replacing the file whole.</summary>
    public static void Write(string path, IEnumerable<HeldOutEpisode> episodes, IReadOnlyList<string> heldOutOrder)
    {
        var index = heldOutOrder.Select((id, i) => (id, i)).ToDictionary(x => x.id, x => x.i);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        File.WriteAllLines(temp, episodes.OrderBy(e => index.GetValueOrDefault(e.TaskId, int.MaxValue)).Select(e => JsonSerializer.Serialize(e)));
        File.Move(temp, path, overwrite: true);
    }
}

/// <summary>Policy vN's greedy evaluation on the held-out split, through the given inference actor (this node's);
/// the episodes go to RUN_DIR/eval/vN.jsonl.</summary>
public static class HeldOutEvaluation
{
    public static async Task<SelfPlay.Core.Search.EvalResult> RunAsync(CampaignContext context, Akka.Actor.IActorRef inference,
        SelfPlay.Core.Environments.IEnvironmentSteps steps, int version, CampaignFiles files)
    {
        var episodes = new System.Collections.Concurrent.ConcurrentQueue<HeldOutEpisode>();
        var result = await SelfPlay.Core.Search.Evaluation.GreedyAsync(context.Setup.Environment, context.Setup.HeldOut,
            new Inference.ActorStepProposer(inference, context.AskTimeout), context.Config.Environment.MaxSteps, steps: steps,
            onEpisode: (task, state, solved) => episodes.Enqueue(new HeldOutEpisode(task.Id, task.Input, solved, state)));
        files.Episodes(version, episodes);
        return result;
    }
}

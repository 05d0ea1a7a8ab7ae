using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;
using SelfPlay.Core.Trees;
using SelfPlay.Actors.Protocol;

namespace SelfPlay.Actors.Campaign;

/// <summary>The search tasks of one iteration, the same on every call: tree ids and seeds depend only on the
/// configuration, so a resumed or moved coordinator (and the in-process recipe) hands out exactly these.</summary>
public static class CampaignTasks
{
    /// <summary><paramref name="count"/> tasks (iterations.trees) from a seeded shuffle of the training split; past the
    /// end of the split a task repeats with a suffix (<c>id-1</c>, <c>id-2</c>, ...), so every tree id is distinct.</summary>
    public static IEnumerable<SearchTask> Of(CampaignConfig config, IReadOnlyList<EnvTask> trainSplit, int iteration, int count, int policyVersion)
    {
        var train = trainSplit.ToArray();
        new Random(unchecked(config.Seed * 7919 + iteration)).Shuffle(train);
        for (var k = 0; k < count; k++)
        {
            var task = train[k % train.Length];
            var taskId = k < train.Length ? task.Id : $"{task.Id}-{k / train.Length}";
            yield return new SearchTask(taskId, PreferenceTree.MakeId(config.Name, iteration, taskId), iteration, task.Input, 0,
                policyVersion, Seeds.Mix(config.Seed, iteration, k));
        }
    }
}

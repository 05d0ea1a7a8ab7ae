using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Preferences;

/// <summary>
/// learner.solution-buffer: what expert iteration trains on is the best known solution of every task solved so far,
/// not only of the tasks the last iterations happened to draw and solve. It is derived from the replay (every tree is
/// kept), so it needs no state of its own and a resumed campaign rebuilds exactly the same buffer.
/// </summary>
public static class SolutionBuffer
{
    /// <summary>
    /// One tree per solved task: the newest one that solved it (the policy's latest solutions; a task that a later
    /// iteration drew and failed keeps its earlier solution). In tree-id order, as the learner reads trees.
    /// </summary>
    public static IReadOnlyList<PreferenceTree> NewestSolved(IEnumerable<PreferenceTree> trees) =>
        [.. SolvedByTask(trees).Select(task => task[0])];

    /// <summary>
    /// Every solved tree of each solved task, newest first (ties by tree id); the tasks in the order of their newest
    /// tree's id. learner.solutions-per-task draws a task's distinct solutions from them.
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<PreferenceTree>> SolvedByTask(IEnumerable<PreferenceTree> trees) =>
        [.. trees.Where(t => t.Solved).GroupBy(t => t.TaskId)
            .Select(g => (IReadOnlyList<PreferenceTree>)[.. g.OrderByDescending(t => t.Iteration).ThenBy(t => t.TreeId, StringComparer.Ordinal)])
            .OrderBy(task => task[0].TreeId, StringComparer.Ordinal)];
}

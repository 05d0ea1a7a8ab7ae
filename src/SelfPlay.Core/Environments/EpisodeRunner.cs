namespace SelfPlay.Core.Environments;

/// <summary>Plays a fixed list of actions through an environment: used for warm-up traces and tests.</summary>
public static class EpisodeRunner
{
    /// <summary>Returns (state before, action, outcome) for every step, stopping at the first terminal outcome.</summary>
    public static IReadOnlyList<(string StateBefore, string Action, StepOutcome Outcome)> Play(
        IEnvironment env, EnvTask task, IEnumerable<string> actions)
    {
        var steps = new List<(string, string, StepOutcome)>();
        var state = env.InitialState(task);
        foreach (var action in actions)
        {
            var outcome = env.Step(task, state, action);
            steps.Add((state, action, outcome));
            state += outcome.Appended;
            if (outcome.IsTerminal) break;
        }
        return steps;
    }
}

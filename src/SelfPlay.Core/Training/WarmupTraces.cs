using SelfPlay.Core.Environments;

namespace SelfPlay.Core.Training;

/// <summary>A piece of a training text; only <see cref="Scored"/> pieces (what the policy itself writes) carry loss.</summary>
public sealed record TextSegment(string Text, bool Scored);

/// <summary>Supervised warm-up traces: reference solutions played through the environment.</summary>
public static class WarmupTraces
{
    /// <summary>
    /// The initial state, then for each step the policy's part (<see cref="StepOutcome.PolicyLength"/>, scored) and the
    /// environment's part (unscored). Returns null when the task has no reference solution.
    /// </summary>
    public static IReadOnlyList<TextSegment>? Build(IEnvironment environment, EnvTask task, Random random)
    {
        var actions = environment.ReferenceActions(task, random);
        if (actions is null) return null;
        IReadOnlyList<(string StateBefore, string Action, StepOutcome Outcome)> steps;
        string initial;
        try
        {
            initial = environment.InitialState(task);
            steps = EpisodeRunner.Play(environment, task, actions);
        }
        catch (EnvironmentFailure) { return null; } // a task its environment cannot start has no trace; the warm-up goes on
        var segments = new List<TextSegment> { new(initial, false) };
        foreach (var (_, action, outcome) in steps)
        {
            var policy = outcome.PolicyLength(action, environment.StepStop);
            segments.Add(new TextSegment(outcome.Appended[..policy], true));
            if (policy < outcome.Appended.Length) segments.Add(new TextSegment(outcome.Appended[policy..], false));
        }
        return segments;
    }
}

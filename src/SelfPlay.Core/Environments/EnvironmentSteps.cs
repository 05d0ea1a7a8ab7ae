namespace SelfPlay.Core.Environments;

/// <summary>One step to apply: the policy's action text on a state.</summary>
public sealed record EnvStep(string State, string Action);

/// <summary>
/// How searches apply steps: batched and asynchronous, so the environment may run elsewhere (an environment actor,
/// possibly on another node). Every step gets an outcome, in order; a step that throws or hangs is a terminal outcome
/// with reward 0 and a one-line reason, never an exception. An implementation may throw only when it cannot reach
/// the environment at all (then the task fails, not the branch).
/// </summary>
public interface IEnvironmentSteps
{
    Task<IReadOnlyList<StepOutcome>> StepAsync(EnvTask task, IReadOnlyList<EnvStep> steps, CancellationToken cancellationToken = default);
}

/// <summary>Applies steps in the caller's process, one after another (tests, benchmarks, golden trees, the environment actor itself).</summary>
public sealed class InlineEnvironmentSteps(IEnvironment environment) : IEnvironmentSteps
{
    public IEnvironment Environment { get; } = environment;

    public Task<IReadOnlyList<StepOutcome>> StepAsync(EnvTask task, IReadOnlyList<EnvStep> steps, CancellationToken cancellationToken = default)
    {
        var outcomes = new StepOutcome[steps.Count];
        for (var i = 0; i < steps.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            outcomes[i] = ApplySafely(Environment, task, steps[i].State, steps[i].Action);
        }
        return Task.FromResult<IReadOnlyList<StepOutcome>>(outcomes);
    }

    /// <summary>
    /// Environment.Step, with an exception turned into a terminal step with reward 0 and a one-line reason (the
    /// campaign's environments are a <see cref="GuardedEnvironment"/>, which also bounds time; this catches what an
    /// unguarded one throws).
    /// </summary>
    public static StepOutcome ApplySafely(IEnvironment environment, EnvTask task, string state, string action)
    {
        try { return environment.Step(task, state, action); }
        catch (Exception e)
        {
            return StepOutcome.End(action.ReplaceLineEndings(" ") + "\n", 0, $"environment error: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
        }
    }
}

namespace SelfPlay.Core.Environments;

/// <summary>One step to apply: the policy's action text on a state.</summary>
public sealed record EnvStep(string State, string Action);

/// <summary>A final state re-verified from its text: its reward and the verifier's reason.</summary>
public sealed record VerifiedState(double Reward, string Reason);

/// <summary>
/// How searches, judges, critics and evaluations reach the environment: batched and asynchronous, so it may run
/// elsewhere (an environment actor, possibly on another node). Every step gets an outcome, in order; a step that
/// throws or hangs is a terminal outcome with reward 0 and a one-line reason, never an exception; a verifier that
/// fails scores 0. An implementation may throw only when it cannot reach the environment at all, or when the
/// environment cannot give a task its initial state (then the task fails, not the branch).
/// </summary>
public interface IEnvironmentSteps
{
    Task<IReadOnlyList<StepOutcome>> StepAsync(EnvTask task, IReadOnlyList<EnvStep> steps, CancellationToken cancellationToken = default);

    /// <summary>The task's first state (throws an <see cref="EnvironmentFailure"/> when the environment cannot start it).</summary>
    Task<string> InitialStateAsync(EnvTask task, CancellationToken cancellationToken = default);

    /// <summary>Re-verifies final states of the task from their text alone, in order.</summary>
    Task<IReadOnlyList<VerifiedState>> VerifyAsync(EnvTask task, IReadOnlyList<string> finalStates, CancellationToken cancellationToken = default);
}

/// <summary>
/// Calls the environment in the caller's process, one call after another (tests, benchmarks, golden trees, the
/// environment actor itself). With <paramref name="scoreSteps"/> (search.critic = environment) each open outcome also
/// carries the environment's step score; otherwise no ScoreStep call is made.
/// </summary>
public sealed class InlineEnvironmentSteps(IEnvironment environment, bool scoreSteps = false) : IEnvironmentSteps
{
    public IEnvironment Environment { get; } = environment;

    public Task<IReadOnlyList<StepOutcome>> StepAsync(EnvTask task, IReadOnlyList<EnvStep> steps, CancellationToken cancellationToken = default)
    {
        var outcomes = new StepOutcome[steps.Count];
        for (var i = 0; i < steps.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            outcomes[i] = ApplySafely(Environment, task, steps[i].State, steps[i].Action, scoreSteps);
        }
        return Task.FromResult<IReadOnlyList<StepOutcome>>(outcomes);
    }

    public Task<string> InitialStateAsync(EnvTask task, CancellationToken cancellationToken = default)
    {
        try { return Task.FromResult(Environment.InitialState(task)); }
        catch (Exception e) { return Task.FromException<string>(e); }
    }

    public Task<IReadOnlyList<VerifiedState>> VerifyAsync(EnvTask task, IReadOnlyList<string> finalStates, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<VerifiedState>>(finalStates.Select(state => VerifySafely(Environment, task, state)).ToArray());

    /// <summary>Environment.Verify, with an exception scoring 0 and a one-line reason (a crashing verifier never rewards).</summary>
    public static VerifiedState VerifySafely(IEnvironment environment, EnvTask task, string finalState)
    {
        try
        {
            var (reward, reason) = environment.Verify(task, finalState);
            return new VerifiedState(reward, reason);
        }
        catch (Exception e) { return new VerifiedState(0, $"verifier error: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}"); }
    }

    /// <summary>
    /// Environment.Step, with an exception turned into a terminal step with reward 0 and a one-line reason (the
    /// campaign's environments are a <see cref="GuardedEnvironment"/>, which also bounds time; this catches what an
    /// unguarded one throws).
    /// </summary>
    public static StepOutcome ApplySafely(IEnvironment environment, EnvTask task, string state, string action, bool scoreStep = false)
    {
        StepOutcome outcome;
        try { outcome = environment.Step(task, state, action); }
        catch (Exception e)
        {
            return StepOutcome.End(action.ReplaceLineEndings(" ") + "\n", 0, $"environment error: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
        }
        return outcome.IsTerminal || !scoreStep ? outcome : outcome with { StepScore = ScoreSafely(environment, task, state, action, outcome) };
    }

    /// <summary>Environment.ScoreStep, with an exception or a score outside [0, 1] giving none (a step score only guides search).</summary>
    static double? ScoreSafely(IEnvironment environment, EnvTask task, string state, string action, StepOutcome outcome)
    {
        try { return environment.ScoreStep(task, state, action, outcome) is { } s && s is >= 0 and <= 1 ? s : null; }
        catch (Exception) { return null; }
    }
}

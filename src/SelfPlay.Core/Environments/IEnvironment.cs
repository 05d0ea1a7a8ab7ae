namespace SelfPlay.Core.Environments;

/// <summary>One problem instance. <see cref="Input"/> is environment-specific text (for Game of 24: "4 5 6 10").</summary>
public sealed record EnvTask(string Id, string Input);

/// <summary>
/// What applying one policy step did. <see cref="Appended"/> is the exact text added to the state (the policy's
/// proposal plus whatever the environment wrote, e.g. a calculator result), ending with a newline.
/// Terminal outcomes carry the verifier's reward in [0, 1] and a one-line reason. <see cref="StepScore"/> is the
/// environment's process score of a non-terminal step (<see cref="IEnvironment.ScoreStep"/>), filled in by the
/// environment steps (<see cref="InlineEnvironmentSteps.ApplySafely"/>) only for search.critic = environment.
/// </summary>
public sealed record StepOutcome(string Appended, bool IsTerminal, double Reward, string Reason, double? StepScore = null)
{
    public static StepOutcome Continue(string appended) => new(appended, false, 0, "");
    public static StepOutcome End(string appended, double reward, string reason) => new(appended, true, reward, reason);

    /// <summary>
    /// How much of <see cref="Appended"/> is the policy's part (its action and the stop string); the rest is what the
    /// environment wrote. Action + stop when the text starts with them; else (the environment rewrote the action) up to
    /// and including the first stop string; else all of it.
    /// </summary>
    public int PolicyLength(string action, string stepStop)
    {
        if (Appended.StartsWith(action + stepStop, StringComparison.Ordinal)) return action.Length + stepStop.Length;
        var stop = stepStop.Length == 0 ? -1 : Appended.IndexOf(stepStop, StringComparison.Ordinal);
        return stop < 0 ? Appended.Length : stop + stepStop.Length;
    }
}

/// <summary>
/// The environment contract. State is plain text (prompt followed by the steps taken so far), so trees,
/// logs and exports are readable and an environment can always re-derive its structured state from it.
/// Implementations must not throw on policy output: bad output is a terminal step with reward 0 and a reason.
/// </summary>
public interface IEnvironment
{
    string Name { get; }

    /// <summary>The initial state for a task (what the policy is conditioned on).</summary>
    string InitialState(EnvTask task);

    /// <summary>Applies the policy's step text to the state.</summary>
    StepOutcome Step(EnvTask task, string state, string action);

    /// <summary>Verifies a finished episode's state text from scratch: reward in [0, 1] and a one-line reason.</summary>
    (double Reward, string Reason) Verify(EnvTask task, string finalState);

    /// <summary>Which character sequence ends a policy step (generation stops there); it is not part of the action.</summary>
    string StepStop { get; }

    /// <summary>A reference solution as the list of policy actions, for supervised warm-up; null when none exists.</summary>
    IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random);

    /// <summary>
    /// Legal-action hints for a state (the clickable elements of a page, the tools that exist, the operations that
    /// are allowed): actions this environment would accept, or null when it has no such list. Hints for searches
    /// and critics, not a constraint: <see cref="Step"/> still judges any text.
    /// </summary>
    IReadOnlyList<string>? LegalActions(EnvTask task, string state) => null;

    /// <summary>
    /// A process score in [0, 1] for a non-terminal step (e.g. the step computed a quantity the solution needs),
    /// or null when this environment does not score intermediate steps. Terminal steps are scored by <see cref="Verify"/>.
    /// It scores open nodes for search.critic = environment.
    /// </summary>
    double? ScoreStep(EnvTask task, string stateBefore, string action, StepOutcome outcome) => null;
}

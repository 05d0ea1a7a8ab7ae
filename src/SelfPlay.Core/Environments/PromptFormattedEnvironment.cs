namespace SelfPlay.Core.Environments;

/// <summary>
/// An environment whose prompt the policy sees formatted (a chat template: the environment's prompt as the user turn,
/// the steps as the assistant turn). The policy's states are <c>format(prompt) + steps</c>; the environment itself only
/// ever sees its own <c>prompt + steps</c>, so no environment parses a template. A state that does not start with the
/// formatted prompt (a tree stored without the template) is passed through unchanged.
/// With <paramref name="turnOpen"/> and <paramref name="turnClose"/>, the text an environment writes after the policy's
/// part of a step (the step up to and including its stop string: a tool's result, a calculator's value) is a turn of
/// its own, <c>turnOpen + text + turnClose</c> (the assistant turn closed, a tool turn, the assistant turn reopened),
/// as instruction-tuned checkpoints were trained to read tool results; empty: it stays inside the assistant turn.
/// </summary>
public sealed class PromptFormattedEnvironment(IEnvironment inner, Func<string, string> format, string turnOpen = "", string turnClose = "") : IEnvironment
{
    public IEnvironment Inner => inner;

    public string Name => inner.Name;
    public string StepStop => inner.StepStop;

    public string InitialState(EnvTask task) => format(inner.InitialState(task));

    /// <summary>The environment's own state for a policy state.</summary>
    public string Unformat(EnvTask task, string state)
    {
        var formatted = InitialState(task);
        return state.StartsWith(formatted, StringComparison.Ordinal) ? inner.InitialState(task) + Unwrap(state[formatted.Length..]) : state;
    }

    /// <summary>The environment's own text of steps (its turns' markers removed).</summary>
    string Unwrap(string steps) => turnOpen.Length == 0 ? steps : steps.Replace(turnOpen, "", StringComparison.Ordinal).Replace(turnClose, "", StringComparison.Ordinal);

    /// <summary>The step's outcome as the policy sees it: what the environment wrote after the policy's part
    /// (<see cref="StepOutcome.PolicyLength"/>) as a turn of its own (not when it wrote only the line end).</summary>
    public StepOutcome Step(EnvTask task, string state, string action)
    {
        var outcome = inner.Step(task, Unformat(task, state), action);
        if (turnOpen.Length == 0) return outcome;
        var policy = outcome.PolicyLength(action, StepStop);
        var written = outcome.Appended[policy..];
        return string.IsNullOrWhiteSpace(written) ? outcome
            : outcome with { Appended = outcome.Appended[..policy] + turnOpen + written + turnClose };
    }

    public (double Reward, string Reason) Verify(EnvTask task, string finalState) => inner.Verify(task, Unformat(task, finalState));
    public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random) => inner.ReferenceActions(task, random);
    public IReadOnlyList<string>? LegalActions(EnvTask task, string state) => inner.LegalActions(task, Unformat(task, state));
    public double? ScoreStep(EnvTask task, string stateBefore, string action, StepOutcome outcome) =>
        inner.ScoreStep(task, Unformat(task, stateBefore), action, outcome with { Appended = Unwrap(outcome.Appended) });
}

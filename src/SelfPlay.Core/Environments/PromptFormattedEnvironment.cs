namespace SelfPlay.Core.Environments;

/// <summary>
/// An environment whose prompt the policy sees formatted (a chat template: the environment's prompt as the user turn,
/// the steps as the assistant turn). The policy's states are <c>format(prompt) + steps</c>; the environment itself only
/// ever sees its own <c>prompt + steps</c>, so no environment parses a template. A state that does not start with the
/// formatted prompt (a tree stored without the template) is passed through unchanged.
/// </summary>
public sealed class PromptFormattedEnvironment(IEnvironment inner, Func<string, string> format) : IEnvironment
{
    public IEnvironment Inner => inner;

    public string Name => inner.Name;
    public string StepStop => inner.StepStop;

    public string InitialState(EnvTask task) => format(inner.InitialState(task));

    /// <summary>The environment's own state for a policy state.</summary>
    public string Unformat(EnvTask task, string state)
    {
        var formatted = InitialState(task);
        return state.StartsWith(formatted, StringComparison.Ordinal) ? inner.InitialState(task) + state[formatted.Length..] : state;
    }

    public StepOutcome Step(EnvTask task, string state, string action) => inner.Step(task, Unformat(task, state), action);
    public (double Reward, string Reason) Verify(EnvTask task, string finalState) => inner.Verify(task, Unformat(task, finalState));
    public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random) => inner.ReferenceActions(task, random);
    public IReadOnlyList<string>? LegalActions(EnvTask task, string state) => inner.LegalActions(task, Unformat(task, state));
    public double? ScoreStep(EnvTask task, string stateBefore, string action, StepOutcome outcome) =>
        inner.ScoreStep(task, Unformat(task, stateBefore), action, outcome);
}

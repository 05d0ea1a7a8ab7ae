using SelfPlay.Core.Environments;

namespace SelfPlay.Samples.Addition;

/// <summary>Adds two numbers in one step: the state is "12+34=", the policy writes "46" and a newline.</summary>
public sealed class AdditionEnvironment : IEnvironment
{
    public string Name => "addition";

    // Generation of a step stops at the end of the line; the newline is not part of the action.
    public string StepStop => "\n";

    public string InitialState(EnvTask task) => task.Input + "=";

    public StepOutcome Step(EnvTask task, string state, string action)
    {
        // Never throw on policy output: bad output is a terminal step with reward 0 and a reason.
        var shown = action.Length > 12 ? action[..12] : action.ReplaceLineEndings(" ");
        var (reward, reason) = Check(task, action);
        return StepOutcome.End(shown + "\n", reward, reason);
    }

    // Re-checks a finished episode from its text alone (the critic calls this, not Step).
    public (double Reward, string Reason) Verify(EnvTask task, string finalState)
    {
        var prefix = InitialState(task);
        if (!finalState.StartsWith(prefix, StringComparison.Ordinal)) return (0, "not this task's state");
        return Check(task, finalState[prefix.Length..].TrimEnd('\n'));
    }

    // The warm-up trains on these: one action, the right answer.
    public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random) => [Sum(task).ToString()];

    static (double Reward, string Reason) Check(EnvTask task, string answer) =>
        !int.TryParse(answer.Trim(), out var n) ? (0, "not a number")
        : n == Sum(task) ? (1, "correct")
        : (0, $"{n} is wrong");

    static int Sum(EnvTask task) => task.Input.Split('+').Sum(int.Parse);
}

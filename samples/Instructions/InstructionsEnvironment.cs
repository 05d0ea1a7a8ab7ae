using SelfPlay.Core.Environments;

namespace SelfPlay.Samples.Instructions;

/// <summary>A judge of what a program cannot check (e.g. an LLM over HTTP): is the response about the topic?</summary>
public interface ITopicJudge
{
    (bool OnTopic, string Reason) Judge(string prompt, string response);
}

/// <summary>
/// Instruction following with verifiable constraints (IFEval-like). The state is the instruction line; the policy
/// answers with one line. The programmatic judge checks every constraint (length, keyword, forbidden word, casing,
/// format, JSON validity): reward 1 when all hold, otherwise <c>wrongAnswerReward</c> × the share kept (0 for an
/// empty, over-long or, when JSON is asked for, non-JSON response). An optional topic judge adds one more check.
/// </summary>
public sealed class InstructionsEnvironment(double wrongAnswerReward = 0, ITopicJudge? topicJudge = null) : IEnvironment
{
    const int MaxResponseLength = 200;

    public double WrongAnswerReward { get; } = wrongAnswerReward is >= 0 and < 1
        ? wrongAnswerReward
        : throw new ArgumentOutOfRangeException(nameof(wrongAnswerReward), "must be in [0, 1)");

    public string Name => "instructions";
    public string StepStop => "\n";

    public string InitialState(EnvTask task) => Instruction.Parse(task.Input).Prompt + "\n";

    public StepOutcome Step(EnvTask task, string state, string action)
    {
        action ??= "";
        var shown = action.ReplaceLineEndings(" ");
        shown = shown.Length > 60 ? shown[..60] : shown;
        if (action.Length > MaxResponseLength) return StepOutcome.End(shown + "\n", 0, $"response is too long ({action.Length} characters)");
        if (action.Contains('\n') || action.Contains('\r')) return StepOutcome.End(shown + "\n", 0, "the response must be one line");
        var (reward, reason) = Grade(Instruction.Parse(task.Input), action);
        return StepOutcome.End(action + "\n", reward, reason);
    }

    public (double Reward, string Reason) Verify(EnvTask task, string finalState)
    {
        Instruction instruction;
        try { instruction = Instruction.Parse(task.Input); }
        catch (FormatException e) { return (0, e.Message); }
        var prefix = instruction.Prompt + "\n";
        if (finalState is null || !finalState.StartsWith(prefix, StringComparison.Ordinal)) return (0, "the state does not start with this task's instruction");
        var response = finalState[prefix.Length..];
        if (!response.EndsWith('\n') || response.IndexOf('\n') != response.Length - 1) return (0, "the response must be one line");
        return response.Length > MaxResponseLength + 1 ? (0, "response is too long") : Grade(instruction, response[..^1]);
    }

    public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random) =>
        InstructionTasks.Reference(Instruction.Parse(task.Input), random) is { } response ? [response] : null;

    (double Reward, string Reason) Grade(Instruction instruction, string response)
    {
        var (share, reason) = instruction.Judge(response);
        if (share == 1 && topicJudge is not null)
        {
            var (onTopic, why) = topicJudge.Judge(instruction.Prompt, response);
            if (!onTopic) return (WrongAnswerReward * instruction.Constraints.Count / (instruction.Constraints.Count + 1), "off topic: " + why);
        }
        return share == 1 ? (1, reason) : (WrongAnswerReward * share, reason);
    }
}

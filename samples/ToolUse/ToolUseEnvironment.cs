using System.Globalization;
using SelfPlay.Core.Environments;

namespace SelfPlay.Samples.ToolUse;

/// <summary>
/// Tool use: the state is "Q: question\n" and one line per call. The policy writes a call up to its closing bracket
/// ("lookup[everest height"; the step stops at "]"), the environment runs the tool and writes " = 8849 m". A call
/// the tool refuses (unknown tool, bad arguments, unknown entity, division by zero) ends the episode with reward 0
/// and the tool's reason. answer[x] ends it: reward 1 when x is the exact answer (to 0.01).
/// </summary>
public sealed class ToolUseEnvironment(ToolRegistry tools, KnowledgeBase knowledge, double wrongAnswerReward = 0) : IEnvironment
{
    const int MaxActionLength = 120;

    public double WrongAnswerReward { get; } = wrongAnswerReward is >= 0 and < 1
        ? wrongAnswerReward
        : throw new ArgumentOutOfRangeException(nameof(wrongAnswerReward), "must be in [0, 1)");

    public string Name => "tool-use";
    public string StepStop => "]";

    public string InitialState(EnvTask task) => ToolTasks.Parse(task.Input, knowledge).Question + "\n";

    public StepOutcome Step(EnvTask task, string state, string action)
    {
        action ??= "";
        if (action.Length > MaxActionLength) return Invalid(action, $"call is too long ({action.Length} characters)");
        if (!TryParseCall(action.Trim(), out var tool, out var arguments)) return Invalid(action, "expected '<tool>[<arguments>]' with tool one of answer, " + string.Join(", ", tools.Names.Order()));
        var call = $"{tool}[{arguments}]";
        if (tool == "answer")
        {
            var (reward, reason) = Grade(ToolTasks.Parse(task.Input, knowledge), arguments);
            return StepOutcome.End(call + "\n", reward, reason);
        }
        try { return StepOutcome.Continue($"{call} = {tools.Call(tool, arguments)}\n"); }
        catch (ToolError e) { return StepOutcome.End(call + "\n", 0, e.Message); }
    }

    public (double Reward, string Reason) Verify(EnvTask task, string finalState)
    {
        ToolTask problem;
        try { problem = ToolTasks.Parse(task.Input, knowledge); }
        catch (FormatException e) { return (0, e.Message); }
        var prefix = problem.Question + "\n";
        if (finalState is null || !finalState.StartsWith(prefix, StringComparison.Ordinal)) return (0, "the state does not start with this task's question");
        var lines = finalState[prefix.Length..].TrimEnd('\n').Split('\n');
        for (var i = 0; i < lines.Length - 1; i++)
        {
            // Every observation is re-computed: a forged tool result does not verify.
            var eq = lines[i].IndexOf("] = ", StringComparison.Ordinal);
            if (eq < 0 || !TryParseCall(lines[i][..(eq + 1)], out var tool, out var arguments) || tool == "answer") return (0, $"line {i + 2} is not a tool call");
            try
            {
                if (tools.Call(tool, arguments) != lines[i][(eq + 4)..]) return (0, $"line {i + 2}: the result is not what {tool} returns");
            }
            catch (ToolError e) { return (0, $"line {i + 2}: {e.Message}"); }
        }
        return TryParseCall(lines[^1], out var last, out var answer) && last == "answer" ? Grade(problem, answer) : (0, "the episode has no answer[...] line");
    }

    public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random) =>
        ToolTasks.Parse(task.Input, knowledge).ReferenceCalls.Select(c => c[..^1]).ToList(); // the policy writes up to "]"

    /// <summary>The lookups of the entities the question names (the facts it needs), as hints.</summary>
    public IReadOnlyList<string>? LegalActions(EnvTask task, string state)
    {
        var question = ToolTasks.Parse(task.Input, knowledge).Question;
        return knowledge.Facts.Where(f => question.Contains(" " + f.Entity, StringComparison.Ordinal) && question.Contains(f.Attribute, StringComparison.Ordinal))
            .Select(f => $"lookup[{f.Entity} {f.Attribute}]").ToList();
    }

    /// <summary>1 when a call returns one of the quantities the reference solution's calls return, else 0.</summary>
    public double? ScoreStep(EnvTask task, string stateBefore, string action, StepOutcome outcome)
    {
        var line = outcome.Appended.TrimEnd('\n');
        var eq = line.IndexOf("] = ", StringComparison.Ordinal);
        if (outcome.IsTerminal || eq < 0) return null;
        var needed = ToolTasks.Parse(task.Input, knowledge).ReferenceCalls.SkipLast(1)
            .Select(c => TryParseCall(c, out var tool, out var arguments) ? tools.Call(tool, arguments) : "");
        return needed.Contains(line[(eq + 4)..]) ? 1 : 0;
    }

    (double Reward, string Reason) Grade(ToolTask problem, string arguments)
    {
        var text = arguments.Trim().Split(' ')[0];
        if (text.Length > 20 || !decimal.TryParse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var answer))
            return (0, "answer: expected a number");
        return Math.Abs(answer - problem.Answer) <= 0.01m ? (1, "solved") : (WrongAnswerReward, $"answer {ToolRegistry.Format(answer)} is wrong");
    }

    static bool TryParseCall(string text, out string tool, out string arguments)
    {
        if (text.EndsWith(']')) text = text[..^1];
        var open = text.IndexOf('[');
        (tool, arguments) = open > 0 ? (text[..open], text[(open + 1)..]) : ("", "");
        return open > 0 && tool.All(char.IsAsciiLetterLower) && !arguments.Contains('[') && !arguments.Contains(']') && !arguments.Contains('\n');
    }

    static StepOutcome Invalid(string action, string reason)
    {
        var shown = action.ReplaceLineEndings(" ");
        return StepOutcome.End((shown.Length > 40 ? shown[..40] : shown) + "\n", 0, reason);
    }
}

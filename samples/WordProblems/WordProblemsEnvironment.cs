using System.Globalization;
using System.Text.RegularExpressions;
using SelfPlay.Core.Environments;

namespace SelfPlay.Samples.WordProblems;

/// <summary>
/// Multi-step arithmetic word problems, GSM8K-style. The state is "Q: question\n" followed by the policy's lines: each
/// is a calculation "a op b = c" (checked exactly; a wrong one ends the episode with reward 0) or the final
/// "The answer is N", which ends the episode; the answer is extracted from that line and compared exactly.
/// </summary>
/// <param name="wrongAnswerReward">reward of an episode whose every line is right but whose answer is wrong.</param>
public sealed partial class WordProblemsEnvironment(double wrongAnswerReward = 0) : IEnvironment
{
    const int MaxActionLength = 80;
    const string AnswerPrefix = "The answer is ";

    public double WrongAnswerReward { get; } = wrongAnswerReward is >= 0 and < 1
        ? wrongAnswerReward
        : throw new ArgumentOutOfRangeException(nameof(wrongAnswerReward), "must be in [0, 1)");

    public string Name => "word-problems";
    public string StepStop => "\n";

    public string InitialState(EnvTask task) => "Q: " + WordProblemTemplates.Parse(task.Input).Question + "\n";

    public StepOutcome Step(EnvTask task, string state, string action)
    {
        action ??= "";
        var line = action.Trim();
        if (line.Length > MaxActionLength) return Invalid(action, $"line is too long ({line.Length} characters)");
        if (line.StartsWith("The answer is", StringComparison.Ordinal))
        {
            var (reward, reason) = Grade(WordProblemTemplates.Parse(task.Input), line);
            return StepOutcome.End(line + "\n", reward, reason);
        }
        var error = CheckCalculation(line);
        return error is null ? StepOutcome.Continue(line + "\n") : Invalid(action, error);
    }

    public (double Reward, string Reason) Verify(EnvTask task, string finalState)
    {
        WordProblem problem;
        try { problem = WordProblemTemplates.Parse(task.Input); }
        catch (FormatException e) { return (0, e.Message); }
        var prefix = "Q: " + problem.Question + "\n";
        if (finalState is null || !finalState.StartsWith(prefix, StringComparison.Ordinal)) return (0, "the state does not start with this task's question");
        var lines = finalState[prefix.Length..].TrimEnd('\n').Split('\n');
        for (var i = 0; i < lines.Length - 1; i++)
            if (CheckCalculation(lines[i]) is { } error) return (0, $"line {i + 2}: {error}");
        return lines[^1].StartsWith(AnswerPrefix, StringComparison.Ordinal) ? Grade(problem, lines[^1]) : (0, "the episode has no answer line");
    }

    public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random)
    {
        var problem = WordProblemTemplates.Parse(task.Input);
        return [.. problem.Steps.Select(s => s.ToString()), AnswerPrefix + problem.Answer.ToString(CultureInfo.InvariantCulture)];
    }

    /// <summary>1 when a calculation line computes one of the reference solution's quantities, else 0.</summary>
    public double? ScoreStep(EnvTask task, string stateBefore, string action, StepOutcome outcome)
    {
        if (outcome.IsTerminal) return null;
        var match = Calculation().Match(action.Trim());
        return match.Success && long.TryParse(match.Groups[4].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var c)
               && WordProblemTemplates.Parse(task.Input).Steps.Any(s => s.Result == c) ? 1 : 0;
    }

    (double Reward, string Reason) Grade(WordProblem problem, string line)
    {
        var match = AnswerLine().Match(line);
        if (!match.Success || !long.TryParse(match.Groups[1].Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var answer))
            return (0, "expected 'The answer is <whole number>'");
        return answer == problem.Answer ? (1, "solved") : (WrongAnswerReward, $"answer {answer} is wrong");
    }

    /// <summary>Null when the line is a right calculation, else why not.</summary>
    static string? CheckCalculation(string line)
    {
        var match = Calculation().Match(line);
        if (!match.Success) return "expected '<a> <op> <b> = <c>' or 'The answer is <n>'";
        if (!long.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var a)
            || !long.TryParse(match.Groups[3].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var b)
            || !long.TryParse(match.Groups[4].Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var c))
            return "a number is too large";
        var op = match.Groups[2].Value[0];
        if (!WordProblemTemplates.TryApply(a, op, b, out var result)) return op == '/' ? $"{a} / {b} is not a whole number" : $"{a} {op} {b} is too large";
        return result == c ? null : $"{a} {op} {b} is {result}, not {c}";
    }

    static StepOutcome Invalid(string action, string reason)
    {
        var shown = action.ReplaceLineEndings(" ");
        return StepOutcome.End((shown.Length > 40 ? shown[..40] : shown) + "\n", 0, reason);
    }

    [GeneratedRegex(@"^(\d{1,12}) ([-+*/]) (\d{1,12}) = (-?\d{1,13})$")]
    private static partial Regex Calculation();

    [GeneratedRegex(@"^The answer is (-?\d{1,13})\.?$")]
    private static partial Regex AnswerLine();
}

using System.Globalization;
using System.Text.RegularExpressions;
using SelfPlay.Core.Environments;

namespace SelfPlay.Samples.WordProblems;

/// <summary>
/// Multi-step arithmetic word problems, GSM8K-style. The state is "Q: question\n" followed by lines of calculations
/// "a op b = c" and a final answer line, which ends the episode; the answer is compared exactly.
/// In whole-step mode the policy writes every line: a calculation is checked exactly (a wrong one ends the episode
/// with reward 0) and the answer is "The answer is N". In operation mode the environment is the policy's calculator,
/// as in GSM8K's calculator annotations: the policy writes "a op b" and the environment writes " = c"; the policy
/// ends with "The answer" and the environment writes " = " and the last result. The policy then chooses the
/// quantities and operations, and a small model no longer has to compute products in its head.
/// </summary>
/// <param name="wrongAnswerReward">reward of an episode whose every line is right but whose answer is wrong.</param>
/// <param name="calculator">operation mode: the environment computes each calculation's result</param>
public sealed partial class WordProblemsEnvironment(double wrongAnswerReward = 0, bool calculator = false) : IEnvironment
{
    const int MaxActionLength = 80;
    const string AnswerPrefix = "The answer is ", CalculatorAnswer = "The answer";

    public double WrongAnswerReward { get; } = wrongAnswerReward is >= 0 and < 1
        ? wrongAnswerReward
        : throw new ArgumentOutOfRangeException(nameof(wrongAnswerReward), "must be in [0, 1)");

    public bool Calculator { get; } = calculator;

    public string Name => "word-problems";
    public string StepStop => Calculator ? " =" : "\n";

    public string InitialState(EnvTask task) => "Q: " + WordProblemTemplates.Parse(task.Input).Question + "\n";

    public StepOutcome Step(EnvTask task, string state, string action)
    {
        action ??= "";
        var line = action.Trim();
        if (line.Length > MaxActionLength) return Invalid(action, $"line is too long ({line.Length} characters)");
        if (Calculator) return StepCalculator(task, state ?? "", line, action);
        if (line.StartsWith("The answer is", StringComparison.Ordinal))
        {
            var (reward, reason) = Grade(WordProblemTemplates.Parse(task.Input), line);
            return StepOutcome.End(line + "\n", reward, reason);
        }
        var error = CheckCalculation(line);
        return error is null ? StepOutcome.Continue(line + "\n") : Invalid(action, error);
    }

    /// <summary>Operation mode: "a op b" gets " = c" written after it; "The answer" gets " = " and the last result.</summary>
    StepOutcome StepCalculator(EnvTask task, string state, string line, string action)
    {
        if (line == CalculatorAnswer)
        {
            var last = state.TrimEnd('\n').Split('\n')[^1];
            var match = Calculation().Match(last);
            if (!match.Success) return Invalid(action, "the answer comes before any calculation");
            var answer = match.Groups[4].Value;
            var (reward, reason) = Grade(WordProblemTemplates.Parse(task.Input), AnswerPrefix + answer);
            return StepOutcome.End($"{CalculatorAnswer} = {answer}\n", reward, reason);
        }
        var operation = Operation().Match(line);
        if (!operation.Success) return Invalid(action, "expected '<a> <op> <b>' or 'The answer'");
        if (!long.TryParse(operation.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var a)
            || !long.TryParse(operation.Groups[3].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var b))
            return Invalid(action, "a number is too large");
        var op = operation.Groups[2].Value[0];
        if (!WordProblemTemplates.TryApply(a, op, b, out var result))
            return Invalid(action, op == '/' ? $"{a} / {b} is not a whole number" : $"{a} {op} {b} is too large");
        return StepOutcome.Continue($"{a} {op} {b} = {result}\n");
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
        if (!Calculator)
            return lines[^1].StartsWith(AnswerPrefix, StringComparison.Ordinal) ? Grade(problem, lines[^1]) : (0, "the episode has no answer line");
        // Operation mode: "The answer = N", N the result of the calculation before it.
        if (!lines[^1].StartsWith(CalculatorAnswer + " = ", StringComparison.Ordinal)) return (0, "the episode has no answer line");
        var claimed = lines[^1][(CalculatorAnswer.Length + 3)..];
        if (lines.Length < 2 || Calculation().Match(lines[^2]) is not { Success: true } previous || previous.Groups[4].Value != claimed)
            return (0, "the answer is not the last calculation's result");
        return Grade(problem, AnswerPrefix + claimed);
    }

    public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random)
    {
        var problem = WordProblemTemplates.Parse(task.Input);
        return Calculator
            ? [.. problem.Steps.Select(s => $"{s.A} {s.Op} {s.B}"), CalculatorAnswer]
            : [.. problem.Steps.Select(s => s.ToString()), AnswerPrefix + problem.Answer.ToString(CultureInfo.InvariantCulture)];
    }

    /// <summary>1 when a calculation line computes one of the reference solution's quantities, else 0.</summary>
    public double? ScoreStep(EnvTask task, string stateBefore, string action, StepOutcome outcome)
    {
        if (outcome.IsTerminal) return null;
        var match = Calculation().Match(outcome.Appended.TrimEnd('\n')); // the line as written (in operation mode, with its result)
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

    [GeneratedRegex(@"^(\d{1,12}) ([-+*/]) (\d{1,12})$")]
    private static partial Regex Operation();

    [GeneratedRegex(@"^The answer is (-?\d{1,13})\.?$")]
    private static partial Regex AnswerLine();
}

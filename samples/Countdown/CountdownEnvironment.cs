using System.Globalization;
using SelfPlay.Core.Environments;

namespace SelfPlay.Samples.Countdown;

/// <summary>
/// Countdown: reach the target from 4 to 6 numbers with + - * /, each number used at most once, every intermediate
/// result a positive integer. The task input is "target n1 n2 ..."; the state is "Make 175 from 3 7 25 50\n" and one
/// line per operation. The policy writes the operation ("25 * 7"); the environment computes the rest of the line, and
/// writes "Answer: ..." when the target is reached or one number is left.
/// </summary>
/// <param name="wrongAnswerReward">reward of an episode that keeps the rules to its end but misses the target.</param>
public sealed class CountdownEnvironment(double wrongAnswerReward = 0) : IEnvironment
{
    const int MaxActionLength = 64;
    internal const int MaxNumbers = 8;

    public double WrongAnswerReward { get; } = wrongAnswerReward is >= 0 and < 1
        ? wrongAnswerReward
        : throw new ArgumentOutOfRangeException(nameof(wrongAnswerReward), "must be in [0, 1)");

    public string Name => "countdown";
    public string StepStop => " =";

    public string InitialState(EnvTask task)
    {
        var (target, numbers) = CountdownTasks.Parse(task.Input);
        return $"Make {target} from {string.Join(' ', numbers)}\n";
    }

    public StepOutcome Step(EnvTask task, string state, string action)
    {
        action ??= "";
        if (action.Length > MaxActionLength) return Invalid(action, $"action is too long ({action.Length} characters)");
        if (!Board.TryRead(state, strict: false, out var board, out var error)) return Invalid(action, error);
        if (board.Finished) return Invalid(action, "the episode is already over");
        if (!TryParseOperation(action, out var a, out var op, out var b))
            return Invalid(action, "expected '<number> <op> <number>' with op one of + - * /");
        if (!board.TryApply(a, op, b, out var result, out error)) return Invalid(action, error);
        var line = $"{a} {op} {b} = {result} (left: {board.Left()})\n";
        if (result != board.Target && board.Count > 1) return StepOutcome.Continue(line);
        var answer = line + $"Answer: {board.Expressions[^1]} = {result}\n";
        return result == board.Target
            ? StepOutcome.End(answer, 1, "solved")
            : StepOutcome.End(answer, WrongAnswerReward, $"result is {result}, not {board.Target}");
    }

    public (double Reward, string Reason) Verify(EnvTask task, string finalState)
    {
        string expected;
        try { expected = InitialState(task); }
        catch (FormatException e) { return (0, e.Message); }
        if (finalState is null || !finalState.StartsWith(expected, StringComparison.Ordinal)) return (0, "the state does not start with this task's line");
        var body = finalState.TrimEnd('\n');
        var answerStart = body.LastIndexOf('\n') + 1;
        if (!body.AsSpan(answerStart).StartsWith("Answer: ")) return (0, "the episode has no answer line");
        if (!Board.TryRead(body[..answerStart], strict: true, out var board, out var error)) return (0, error);
        if (board.Operations == 0) return (0, "no operation before the answer");
        var last = board.Values[^1];
        if (body[answerStart..] != $"Answer: {board.Expressions[^1]} = {last}") return (0, "the answer line does not match the steps");
        if (last == board.Target) return (1, "solved");
        return board.Count == 1 ? (WrongAnswerReward, $"result is {last}, not {board.Target}") : (0, "answer before the end");
    }

    /// <summary>A solution found by the exact solver (a random one of the first few it finds).</summary>
    public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random)
    {
        var (target, numbers) = CountdownTasks.Parse(task.Input);
        return CountdownTasks.Solve(target, numbers, random);
    }

    /// <summary>Every operation on the numbers left that keeps the rules.</summary>
    public IReadOnlyList<string>? LegalActions(EnvTask task, string state)
    {
        if (!Board.TryRead(state, strict: false, out var board, out _) || board.Finished) return [];
        var actions = new List<string>();
        for (var i = 0; i < board.Count; i++)
            for (var j = 0; j < board.Count; j++)
                if (i != j)
                    foreach (var op in "+-*/")
                        if ((op is not ('+' or '*') || i < j) && CountdownTasks.TryApply(board.Values[i], op, board.Values[j], out _))
                            actions.Add($"{board.Values[i]} {op} {board.Values[j]}");
        return actions.Distinct().ToList();
    }

    static bool TryParseOperation(string text, out long a, out char op, out long b)
    {
        (a, op, b) = (0, ' ', 0);
        var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 3 || parts[1].Length != 1 || !"+-*/".Contains(parts[1][0])) return false;
        op = parts[1][0];
        return long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out a)
               && long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out b);
    }

    static StepOutcome Invalid(string action, string reason)
    {
        var shown = action.ReplaceLineEndings(" ");
        return StepOutcome.End((shown.Length > 32 ? shown[..32] : shown) + "\n", 0, reason);
    }

    /// <summary>The numbers left, their expressions, read back from the state text.</summary>
    sealed class Board
    {
        public long Target { get; private set; }
        public long[] Numbers { get; private set; } = [];
        public List<long> Values { get; } = [];
        public List<string> Expressions { get; } = [];
        public int Count => Values.Count;
        public int Operations { get; private set; }
        public bool Finished => Count <= 1 || (Operations > 0 && Values[^1] == Target);

        public string Left() => string.Join(' ', Values.Order());

        public static bool TryRead(string? state, bool strict, out Board board, out string error)
        {
            board = new Board();
            var lines = (state ?? "").Split('\n');
            var head = lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (head.Length < 4 || head.Length > MaxNumbers + 3 || head[0] != "Make" || head[2] != "from"
                || !long.TryParse(head[1], NumberStyles.None, CultureInfo.InvariantCulture, out var target))
            {
                error = "the state does not start with 'Make <target> from <numbers>'";
                return false;
            }
            board.Target = target;
            board.Numbers = new long[head.Length - 3];
            for (var i = 3; i < head.Length; i++)
            {
                if (!long.TryParse(head[i], NumberStyles.None, CultureInfo.InvariantCulture, out board.Numbers[i - 3]))
                {
                    error = "the state's numbers are not numbers";
                    return false;
                }
                board.Values.Add(board.Numbers[i - 3]);
                board.Expressions.Add(head[i]);
            }
            for (var n = 1; n < lines.Length; n++)
            {
                var line = lines[n];
                if (line.Length == 0) continue;
                var eq = line.IndexOf(" = ", StringComparison.Ordinal);
                if (board.Finished || line.StartsWith("Answer:", StringComparison.Ordinal))
                {
                    error = "the episode is already over";
                    return false;
                }
                if (eq < 0 || !TryParseOperation(line[..eq], out var a, out var op, out var b) || !board.TryApply(a, op, b, out var result, out error))
                {
                    error = $"state line {n + 1} is not a valid step";
                    return false;
                }
                if (strict && line != $"{a} {op} {b} = {result} (left: {board.Left()})")
                {
                    error = $"state line {n + 1} does not match its operation";
                    return false;
                }
            }
            error = "";
            return true;
        }

        public bool TryApply(long a, char op, long b, out long result, out string error)
        {
            result = 0;
            var ia = Values.LastIndexOf(a);
            var ib = ia < 0 ? -1 : IndexOtherThan(b, ia);
            if (ia < 0) { error = $"{a} is not available (left: {Left()})"; return false; }
            if (ib < 0) { error = a == b ? $"{a} is used twice but only one is left" : $"{b} is not available (left: {Left()})"; return false; }
            if (!CountdownTasks.TryApply(a, op, b, out result))
            {
                error = op == '/' ? $"{a} / {b} is not a whole number" : $"{a} {op} {b} is not a positive number";
                return false;
            }
            var left = Operand(ia);
            var right = Operand(ib);
            foreach (var i in new[] { Math.Max(ia, ib), Math.Min(ia, ib) })
            {
                Values.RemoveAt(i);
                Expressions.RemoveAt(i);
            }
            Values.Add(result);
            Expressions.Add($"{left} {op} {right}");
            Operations++;
            error = "";
            return true;
        }

        int IndexOtherThan(long value, int other)
        {
            for (var i = Values.Count - 1; i >= 0; i--)
                if (i != other && Values[i] == value) return i;
            return -1;
        }

        string Operand(int i) => Expressions[i].Contains(' ') ? "(" + Expressions[i] + ")" : Expressions[i];
    }
}

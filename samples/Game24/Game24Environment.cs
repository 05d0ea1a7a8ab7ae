using System.Globalization;
using SelfPlay.Core.Environments;

namespace SelfPlay.Samples.Game24;

/// <summary>How much text one policy step is.</summary>
public enum Game24StepMode
{
    /// <summary>The policy writes "4 * 5"; the environment computes " = 20 (left: 6 10 20)" and the final answer.</summary>
    Operation,

    /// <summary>Tree-of-Thoughts style: the policy writes whole lines "4 * 5 = 20 (left: 6 10 20)", then "Answer: ...".</summary>
    WholeStep,
}

/// <summary>
/// Game of 24 as an <see cref="IEnvironment"/>. The state is "Input: 4 5 6 10\n" followed by one line per operation;
/// every call re-reads the numbers left (exact rationals) and their expressions from that text.
/// </summary>
/// <param name="wrongAnswerReward">reward of an episode that follows the rules to its end but does not reach 24
/// (0 by default: only solutions count). A small value separates well-formed attempts from invalid steps, which
/// gives the search a preference signal on puzzles it does not solve.</param>
public sealed class Game24Environment(Game24StepMode mode = Game24StepMode.Operation, double wrongAnswerReward = 0) : IEnvironment
{
    // Longer actions are rejected before any parsing; a real step is a few dozen characters.
    private const int MaxActionLength = 256;
    private const int ShownActionLength = 64;
    private const int MaxNumbers = 8;

    public Game24StepMode Mode { get; } = mode;

    public double WrongAnswerReward { get; } = wrongAnswerReward is >= 0 and < 1
        ? wrongAnswerReward
        : throw new ArgumentOutOfRangeException(nameof(wrongAnswerReward), "must be in [0, 1)");

    public string Name => "game24";

    public string StepStop => Mode == Game24StepMode.Operation ? " =" : "\n";

    public string InitialState(EnvTask task)
    {
        ArgumentNullException.ThrowIfNull(task);
        return "Input: " + Game24Puzzles.Format(Game24Puzzles.Parse(task.Input)) + "\n";
    }

    public StepOutcome Step(EnvTask task, string state, string action)
    {
        action ??= "";
        if (action.Length > MaxActionLength) return Invalid(action, $"action is too long ({action.Length} characters)");
        if (!Board.TryRead(state, strict: false, out var board, out var error)) return Invalid(action, error);
        try
        {
            return Mode == Game24StepMode.Operation ? StepOperation(board, action) : StepWhole(board, action);
        }
        catch (OverflowException)
        {
            return Invalid(action, "arithmetic overflow");
        }
    }

    /// <summary>
    /// Re-checks a finished episode from its text alone: the Input line is this task's puzzle, every step line is a
    /// valid operation with the right result and left list, and the last line is an answer the verifier accepts.
    /// </summary>
    public (double Reward, string Reason) Verify(EnvTask task, string finalState)
    {
        if (task?.Input is null) return (0, "no task");
        int[] numbers;
        try
        {
            numbers = Game24Puzzles.Parse(task.Input);
        }
        catch (FormatException e)
        {
            return (0, OneLine(e.Message));
        }
        if (finalState is null || !finalState.StartsWith("Input: " + Game24Puzzles.Format(numbers) + "\n", StringComparison.Ordinal))
            return (0, "the state does not start with this task's Input line");

        var body = finalState.AsSpan().TrimEnd();
        var lastLineStart = body.LastIndexOf('\n') + 1;
        var lastLine = body[lastLineStart..].ToString();
        if (!lastLine.StartsWith("Answer:", StringComparison.Ordinal)) return (0, "the episode has no answer line");
        try
        {
            if (!Board.TryRead(finalState[..lastLineStart], strict: true, out var board, out var error)) return (0, error);
            if (board.Count != 1) return (0, $"the answer comes while {board.Count} numbers are left");
            if (Mode == Game24StepMode.Operation && board.Values[0] != Game24Solver.Target)
                return (WrongAnswerReward, $"result is {board.Values[0]}, not 24");
            var (ok, reason) = Game24Verifier.Verify(numbers, lastLine);
            return ok ? (1, "solved") : (IsWrongValue(reason) ? WrongAnswerReward : 0, reason);
        }
        catch (OverflowException)
        {
            return (0, "arithmetic overflow");
        }
    }

    public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(random);
        var numbers = Game24Puzzles.Parse(task.Input);
        var solutions = Game24Solver.Solve(numbers);
        if (solutions.Count == 0) return null;
        var solution = solutions[random.Next(solutions.Count)];
        if (Mode == Game24StepMode.Operation) return solution.Operations.Select(o => o.ToString()).ToArray();

        var left = numbers.Select(n => (Rational)n).ToList();
        var actions = new List<string>();
        foreach (var op in solution.Operations)
        {
            left.Remove(op.Left);
            left.Remove(op.Right);
            left.Add(op.Result);
            actions.Add($"{op} = {op.Result} (left: {FormatLeft(left)})");
        }
        actions.Add($"Answer: {solution.Expression} = 24");
        return actions;
    }

    /// <summary>
    /// Operation mode: every operation on two of the numbers left that the environment accepts (+ and * once per pair,
    /// − and / both ways), distinct by text; null in whole-step mode or when the state cannot be read.
    /// </summary>
    public IReadOnlyList<string>? LegalActions(EnvTask task, string state)
    {
        if (Mode != Game24StepMode.Operation || !Board.TryRead(state, strict: false, out var board, out _) || board.Count < 2) return null;
        var actions = new List<string>();
        var values = board.Values;
        for (var i = 0; i < values.Count; i++)
            for (var j = i + 1; j < values.Count; j++)
                foreach (var (a, op, b) in new[] { (values[i], '+', values[j]), (values[i], '*', values[j]), (values[i], '-', values[j]),
                             (values[j], '-', values[i]), (values[i], '/', values[j]), (values[j], '/', values[i]) })
                {
                    var action = $"{a} {op} {b}";
                    if (actions.Contains(action)) continue;
                    var outcome = Step(task, state, action);
                    if (!outcome.IsTerminal || outcome.Reason == "solved" || outcome.Reason.StartsWith("result is", StringComparison.Ordinal)) actions.Add(action);
                }
        return actions;
    }

    // The verifier's reason for a well-formed answer that uses the right numbers but misses 24.
    private static bool IsWrongValue(string reason) => reason.StartsWith("evaluates to", StringComparison.Ordinal);

    private StepOutcome StepOperation(Board board, string action)
    {
        if (board.Count < 2) return Invalid(action, "the episode is already over");
        var text = action.Trim();
        if (text.Length == 0) return Invalid(action, "empty action");
        if (!TryParseOperation(text, out var a, out var op, out var b))
            return Invalid(action, $"cannot parse '{Shorten(text)}': expected '<number> <op> <number>' with op one of + - * /");
        if (!board.TryApply(a, op, b, out var result, out var error)) return Invalid(action, error);

        var line = $"{a} {op} {b} = {result} (left: {board.Left()})\n";
        if (board.Count > 1) return StepOutcome.Continue(line);
        var (value, expression) = (board.Values[0], board.Expressions[0]);
        var appended = line + $"Answer: {expression} = {value}\n";
        return value == Game24Solver.Target
            ? StepOutcome.End(appended, 1, "solved")
            : StepOutcome.End(appended, WrongAnswerReward, $"result is {value}, not 24");
    }

    private StepOutcome StepWhole(Board board, string action)
    {
        var text = action.Trim();
        if (text.Length == 0) return Invalid(action, "empty action");
        var isAnswer = text.StartsWith("Answer:", StringComparison.Ordinal);
        if (board.Count == 1)
        {
            if (!isAnswer) return Invalid(action, "one number is left: expected 'Answer: <expression> = 24'");
            var (ok, reason) = Game24Verifier.Verify(board.Numbers, text);
            return StepOutcome.End(OneLine(text) + "\n", ok ? 1 : IsWrongValue(reason) ? WrongAnswerReward : 0, reason);
        }
        if (isAnswer) return Invalid(action, $"an answer was given while {board.Count} numbers are left");

        const string expected = "expected '<number> <op> <number> = <result> (left: <numbers>)'";
        var eq = text.IndexOf('=');
        var open = text.IndexOf("(left:", StringComparison.Ordinal);
        if (eq < 0 || open < eq || text[^1] != ')') return Invalid(action, $"cannot parse '{Shorten(text)}': {expected}");
        if (!TryParseOperation(text.AsSpan(0, eq), out var a, out var op, out var b))
            return Invalid(action, $"cannot parse the operation in '{Shorten(text)}': {expected}");
        if (!Rational.TryParse(text.AsSpan(eq + 1, open - eq - 1).Trim(), out var claimed))
            return Invalid(action, $"cannot parse the result in '{Shorten(text)}': {expected}");
        var claimedLeft = new List<Rational>();
        var leftText = text.AsSpan(open + "(left:".Length, text.Length - open - "(left:".Length - 1);
        foreach (var range in leftText.Split(' '))
        {
            var token = leftText[range].Trim();
            if (token.Length == 0) continue;
            if (!Rational.TryParse(token, out var n))
                return Invalid(action, $"cannot parse the left numbers in '{Shorten(text)}': {expected}");
            claimedLeft.Add(n);
        }

        if (!board.TryApply(a, op, b, out var result, out var error)) return Invalid(action, error);
        if (claimed != result) return Invalid(action, $"{a} {op} {b} is {result}, not {claimed}");
        var left = board.Left();
        if (FormatLeft(claimedLeft) != left) return Invalid(action, $"left should be {left}, not {FormatLeft(claimedLeft)}");
        return StepOutcome.Continue($"{a} {op} {b} = {result} (left: {left})\n");
    }

    /// <summary>"4 * 5", "8/3 * 9", "4 - -3": exactly three space-separated tokens.</summary>
    private static bool TryParseOperation(ReadOnlySpan<char> text, out Rational a, out char op, out Rational b)
    {
        a = b = default;
        op = ' ';
        Span<Range> parts = stackalloc Range[4];
        if (text.Split(parts, ' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) != 3) return false;
        var opText = text[parts[1]];
        if (opText.Length != 1 || !"+-*/".Contains(opText[0])) return false;
        op = opText[0];
        return Rational.TryParse(text[parts[0]], out a) && Rational.TryParse(text[parts[2]], out b);
    }

    private static string FormatLeft(IEnumerable<Rational> values) => string.Join(' ', values.Order());

    private static StepOutcome Invalid(string action, string reason)
    {
        var shown = OneLine(action);
        if (shown.Length > ShownActionLength) shown = shown[..ShownActionLength];
        return StepOutcome.End(shown + "\n", 0, OneLine(reason));
    }

    private static string OneLine(string text) => text.Replace("\r", "").Replace("\n", "");

    private static string Shorten(string text)
    {
        var oneLine = OneLine(text);
        return oneLine.Length > 40 ? oneLine[..40] + "..." : oneLine;
    }

    /// <summary>The structured state: the puzzle and, for each number left, its value and expression.</summary>
    private sealed class Board
    {
        public int[] Numbers { get; private set; } = [];
        public List<Rational> Values { get; } = new(4);
        /// <summary>Expression text without outer parentheses; Compound says whether it needs them as an operand.</summary>
        public List<string> Expressions { get; } = new(4);
        private readonly List<bool> _compound = new(4);

        public int Count => Values.Count;

        public string Left() => FormatLeft(Values);

        /// <summary>
        /// Reads "Input: ..." and replays each step line's operation (the part before " = "). Strict also requires
        /// each line to be exactly the line this environment would write (right result, right left list).
        /// </summary>
        public static bool TryRead(string? state, bool strict, out Board board, out string error)
        {
            board = new Board();
            if (state is null || !state.StartsWith("Input:", StringComparison.Ordinal))
            {
                error = "the state does not start with 'Input:'";
                return false;
            }
            var pos = 0;
            var input = NextLine(state, ref pos)["Input:".Length..];
            Span<Range> parts = stackalloc Range[MaxNumbers + 1];
            var count = input.Split(parts, ' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (count is 0 or > MaxNumbers)
            {
                error = "the state's Input line is not a puzzle";
                return false;
            }
            board.Numbers = new int[count];
            for (var i = 0; i < count; i++)
            {
                if (!int.TryParse(input[parts[i]], NumberStyles.None, CultureInfo.InvariantCulture, out board.Numbers[i]))
                {
                    error = "the state's Input line is not a puzzle";
                    return false;
                }
                board.Values.Add(board.Numbers[i]);
                board.Expressions.Add(board.Numbers[i].ToString(CultureInfo.InvariantCulture));
                board._compound.Add(false);
            }

            var lineNumber = 1;
            while (pos < state.Length)
            {
                var line = NextLine(state, ref pos);
                lineNumber++;
                if (line.IsWhiteSpace()) continue;
                if (line.StartsWith("Answer:", StringComparison.Ordinal))
                {
                    error = "the episode is already over";
                    return false;
                }
                var eq = line.IndexOf(" = ", StringComparison.Ordinal);
                if (eq < 0 || !TryParseOperation(line[..eq], out var a, out var op, out var b))
                {
                    error = $"state line {lineNumber} is not a step";
                    return false;
                }
                if (!board.TryApply(a, op, b, out var result, out var applyError))
                {
                    error = $"state line {lineNumber}: {applyError}";
                    return false;
                }
                if (strict && !line.SequenceEqual($"{a} {op} {b} = {result} (left: {board.Left()})"))
                {
                    error = $"state line {lineNumber} should be '{a} {op} {b} = {result} (left: {board.Left()})'";
                    return false;
                }
            }
            error = "";
            return true;
        }

        /// <summary>Replaces the two operands by the result; the operands must be in the multiset of numbers left.</summary>
        public bool TryApply(Rational a, char op, Rational b, out Rational result, out string error)
        {
            result = default;
            // From the end: when equal values exist, the most recent result is the likelier meaning.
            var ia = Values.LastIndexOf(a);
            if (ia < 0)
            {
                error = $"{a} is not available (left: {Left()})";
                return false;
            }
            var ib = Values.LastIndexOf(b);
            if (ib == ia) ib = ib == 0 ? -1 : Values.LastIndexOf(b, ia - 1);
            if (ib < 0)
            {
                error = a == b ? $"{a} is used twice but only one is left (left: {Left()})" : $"{b} is not available (left: {Left()})";
                return false;
            }
            if (!Game24Solver.TryApply(a, op, b, out result))
            {
                error = "division by zero";
                return false;
            }
            var expression = Operand(ia) + " " + op + " " + Operand(ib);
            RemoveAt(Math.Max(ia, ib));
            RemoveAt(Math.Min(ia, ib));
            Values.Add(result);
            Expressions.Add(expression);
            _compound.Add(true);
            error = "";
            return true;
        }

        private void RemoveAt(int i)
        {
            Values.RemoveAt(i);
            Expressions.RemoveAt(i);
            _compound.RemoveAt(i);
        }

        private string Operand(int i) => _compound[i] ? "(" + Expressions[i] + ")" : Expressions[i];

        private static ReadOnlySpan<char> NextLine(string text, ref int pos)
        {
            var end = text.IndexOf('\n', pos);
            if (end < 0) end = text.Length;
            var line = text.AsSpan(pos, end - pos).TrimEnd('\r');
            pos = end + 1;
            return line;
        }
    }
}

using System.Globalization;

namespace SelfPlay.Samples.Game24;

/// <summary>
/// Checks a final answer: "Answer: &lt;expr&gt; = 24", "&lt;expr&gt; = 24" or "&lt;expr&gt;". The expression (integers,
/// + - * /, parentheses) must use exactly the puzzle's numbers and evaluate exactly to 24. Never throws.
/// </summary>
public static class Game24Verifier
{
    private const int MaxLength = 1000;
    private const int MaxDepth = 50;

    public static (bool Ok, string Reason) Verify(IReadOnlyList<int> numbers, string answer)
    {
        try
        {
            return VerifyCore(numbers, answer);
        }
        catch (OverflowException)
        {
            return (false, "arithmetic overflow");
        }
    }

    private static (bool Ok, string Reason) VerifyCore(IReadOnlyList<int> numbers, string? answer)
    {
        if (numbers is null) return (false, "no puzzle numbers given");
        if (answer is null) return (false, "cannot parse: empty answer");
        if (answer.Length > MaxLength) return (false, $"cannot parse: answer is too long ({answer.Length} characters)");
        var text = answer.Trim();
        if (text.StartsWith("Answer:", StringComparison.OrdinalIgnoreCase)) text = text["Answer:".Length..];
        var eq = text.IndexOf('=');
        if (eq >= 0)
        {
            if (text[(eq + 1)..].Trim() != "24") return (false, "cannot parse: the answer must end with '= 24'");
            text = text[..eq];
        }

        var parser = new Parser(text);
        if (!parser.TryParse(out var error)) return (false, "cannot parse: " + error);

        var reason = CheckNumbers(numbers, parser.Used);
        if (reason is not null) return (false, reason);

        var stack = new Stack<Rational>();
        foreach (var (op, number) in parser.Postfix)
        {
            if (op == 'n')
            {
                stack.Push(number);
                continue;
            }
            var right = stack.Pop();
            var left = stack.Pop();
            if (!Game24Solver.TryApply(left, op, right, out var result)) return (false, "division by zero");
            stack.Push(result);
        }
        var value = stack.Pop();
        return value == Game24Solver.Target ? (true, "solved") : (false, $"evaluates to {value}, not 24");
    }

    /// <summary>Null when the used numbers are exactly the puzzle's multiset, else the first problem found.</summary>
    private static string? CheckNumbers(IReadOnlyList<int> numbers, List<long> used)
    {
        var available = new Dictionary<long, int>();
        foreach (var n in numbers) available[n] = available.GetValueOrDefault(n) + 1;
        var counts = new Dictionary<long, int>();
        foreach (var n in used) counts[n] = counts.GetValueOrDefault(n) + 1;

        foreach (var n in used)
            if (!available.ContainsKey(n)) return $"uses {n}, which is not in the puzzle";
        foreach (var n in used)
            if (counts[n] > available[n]) return $"uses {n} {Times(counts[n])} but the puzzle has it {Times(available[n])}";
        foreach (var n in numbers.Order())
        {
            var count = counts.GetValueOrDefault(n);
            if (count == 0) return $"does not use {n}";
            if (count < available[n]) return $"uses {n} {Times(count)} but the puzzle has it {Times(available[n])}";
        }
        return null;
    }

    private static string Times(int n) => n switch { 1 => "once", 2 => "twice", _ => $"{n} times" };

    /// <summary>Recursive descent to postfix: expr = term (('+'|'-') term)*; term = factor (('*'|'/') factor)*.</summary>
    private sealed class Parser(string text)
    {
        private int _pos;
        private int _depth;

        /// <summary>Operators, or 'n' with the number.</summary>
        public List<(char Op, Rational Number)> Postfix { get; } = [];
        public List<long> Used { get; } = [];

        public bool TryParse(out string error)
        {
            SkipSpaces();
            if (_pos == text.Length)
            {
                error = "empty expression";
                return false;
            }
            if (!Expression(out error)) return false;
            SkipSpaces();
            if (_pos < text.Length)
            {
                error = $"unexpected '{text[_pos]}' at position {_pos + 1}";
                return false;
            }
            return true;
        }

        private bool Expression(out string error)
        {
            if (++_depth > MaxDepth)
            {
                error = "too deeply nested";
                return false;
            }
            if (!Term(out error)) return false;
            while (TryOperator('+', '-', out var op))
            {
                if (!Term(out error)) return false;
                Postfix.Add((op, default));
            }
            _depth--;
            return true;
        }

        private bool Term(out string error)
        {
            if (!Factor(out error)) return false;
            while (TryOperator('*', '/', out var op))
            {
                if (!Factor(out error)) return false;
                Postfix.Add((op, default));
            }
            return true;
        }

        private bool Factor(out string error)
        {
            SkipSpaces();
            if (_pos == text.Length)
            {
                error = "unexpected end of expression";
                return false;
            }
            if (text[_pos] == '(')
            {
                _pos++;
                if (!Expression(out error)) return false;
                SkipSpaces();
                if (_pos == text.Length || text[_pos] != ')')
                {
                    error = "missing ')'";
                    return false;
                }
                _pos++;
                return true;
            }
            var start = _pos;
            while (_pos < text.Length && char.IsAsciiDigit(text[_pos])) _pos++;
            if (_pos == start)
            {
                error = $"unexpected '{text[_pos]}' at position {_pos + 1}";
                return false;
            }
            if (!long.TryParse(text.AsSpan(start, _pos - start), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                error = "number too large";
                return false;
            }
            Used.Add(n);
            Postfix.Add(('n', n));
            error = "";
            return true;
        }

        private bool TryOperator(char a, char b, out char op)
        {
            SkipSpaces();
            op = _pos < text.Length ? text[_pos] : '\0';
            if (op != a && op != b) return false;
            _pos++;
            return true;
        }

        private void SkipSpaces()
        {
            while (_pos < text.Length && char.IsWhiteSpace(text[_pos])) _pos++;
        }
    }
}

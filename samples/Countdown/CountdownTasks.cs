using System.Globalization;

namespace SelfPlay.Samples.Countdown;

/// <summary>Countdown rules, the task generator and an exact solver.</summary>
public static class CountdownTasks
{
    static readonly long[] Large = [25, 50, 75, 100];

    /// <summary>"175 3 7 25 50": the target, then 2 to 8 numbers, all positive.</summary>
    public static (long Target, long[] Numbers) Parse(string input)
    {
        var parts = (input ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var values = new long[parts.Length];
        for (var i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out values[i]) || values[i] is < 1 or > 1_000_000)
                throw new FormatException($"a countdown task is '<target> <numbers>', positive integers, got '{Shorten(input)}'");
        if (values.Length is < 3 or > CountdownEnvironment.MaxNumbers + 1)
            throw new FormatException($"a countdown task has a target and 2 to {CountdownEnvironment.MaxNumbers} numbers, got '{Shorten(input)}'");
        return (values[0], values[1..]);
    }

    /// <summary>The rules: every result is a positive integer (no negative differences, only exact divisions).</summary>
    public static bool TryApply(long a, char op, long b, out long result)
    {
        result = op switch
        {
            '+' => a + b,
            '-' => a - b,
            '*' => a <= 1_000_000_000 / Math.Max(1, b) ? a * b : -1,
            '/' => b != 0 && a % b == 0 ? a / b : -1,
            _ => -1,
        };
        return result > 0;
    }

    /// <summary>
    /// count distinct tasks: n numbers (small 1..10, or large 25/50/75/100 with probability 1/4) and a target made by
    /// a random chain of 2..n-1 operations, in 10..999 and not one of the numbers, so every task is solvable.
    /// </summary>
    public static List<string> Generate(int count, int seed, int minNumbers, int maxNumbers, IReadOnlySet<string>? exclude = null)
    {
        var random = new Random(seed);
        var tasks = new List<string>(count);
        var seen = new HashSet<string>(exclude ?? new HashSet<string>());
        for (var attempts = 0; tasks.Count < count; attempts++)
        {
            if (attempts > count * 1000) throw new InvalidOperationException($"cannot generate {count} distinct countdown tasks");
            var n = random.Next(minNumbers, maxNumbers + 1);
            var numbers = Enumerable.Range(0, n).Select(_ => random.Next(4) == 0 ? Large[random.Next(Large.Length)] : random.Next(1, 11)).ToList();
            var pool = new List<long>(numbers);
            var steps = random.Next(2, n);
            long value = 0;
            for (var s = 0; s < steps; s++)
            {
                var i = random.Next(pool.Count);
                var j = random.Next(pool.Count - 1);
                if (j >= i) j++;
                var op = "+-*/"[random.Next(4)];
                if (!TryApply(pool[i], op, pool[j], out value) || value == pool[i] || value == pool[j]) { value = 0; break; }
                foreach (var k in new[] { Math.Max(i, j), Math.Min(i, j) }) pool.RemoveAt(k);
                pool.Add(value);
            }
            if (value is < 10 or > 999 || numbers.Contains(value)) continue;
            numbers.Sort();
            var input = value + " " + string.Join(' ', numbers);
            if (seen.Add(input)) tasks.Add(input);
        }
        return tasks;
    }

    /// <summary>A solution as operations "a op b" (depth-first, in random order), or null when there is none.</summary>
    public static IReadOnlyList<string>? Solve(long target, long[] numbers, Random random)
    {
        var path = new List<string>();
        return Search(numbers.ToList()) ? path : null;

        bool Search(List<long> pool)
        {
            var pairs = new List<(int, int, char)>();
            for (var i = 0; i < pool.Count; i++)
                for (var j = 0; j < pool.Count; j++)
                    if (i != j)
                        foreach (var op in "+-*/")
                            if (op is not ('+' or '*') || i < j) pairs.Add((i, j, op));
            random.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(pairs));
            foreach (var (i, j, op) in pairs)
            {
                if (!TryApply(pool[i], op, pool[j], out var result)) continue;
                path.Add($"{pool[i]} {op} {pool[j]}");
                if (result == target) return true;
                var next = pool.Where((_, k) => k != i && k != j).Append(result).ToList();
                if (next.Count > 1 && Search(next)) return true;
                path.RemoveAt(path.Count - 1);
            }
            return false;
        }
    }

    static string Shorten(string? text) => text is null ? "" : text.Length > 40 ? text[..40] + "..." : text;
}

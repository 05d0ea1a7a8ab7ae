using System.Text;

namespace SelfPlay.Samples.Game24;

/// <summary>One step of a solution: "Left Op Right", which gives Result. ToString is the operation-mode action.</summary>
public readonly record struct Game24Operation(Rational Left, char Op, Rational Right, Rational Result)
{
    public override string ToString() => $"{Left} {Op} {Right}";
}

/// <summary>A solution: the operations in order, and the final expression, e.g. "(5 * 4) + (10 - 6)".</summary>
public sealed record Solution(IReadOnlyList<Game24Operation> Operations, string Expression);

/// <summary>Exact Game of 24 solver over rationals (fractions and negative intermediates allowed).</summary>
public static class Game24Solver
{
    public static readonly Rational Target = 24;

    /// <summary>
    /// All distinct solutions. Two solutions are the same when their operation sequences are the same; for + and *
    /// the larger operand is written first, so a+b and b+a count once.
    /// </summary>
    public static IReadOnlyList<Solution> Solve(IReadOnlyList<int> numbers)
    {
        ArgumentNullException.ThrowIfNull(numbers);
        var found = new List<Solution>();
        if (numbers.Count == 0) return found;
        var values = new Rational[numbers.Count];
        var nodes = new Node[numbers.Count];
        for (var i = 0; i < numbers.Count; i++)
        {
            values[i] = numbers[i];
            nodes[i] = new Node(values[i]);
        }
        SolveAll(values, nodes, new Game24Operation[numbers.Count - 1], 0, found, new HashSet<string>());
        return found;
    }

    /// <summary>Whether any solution exists; stops at the first one.</summary>
    public static bool IsSolvable(IReadOnlyList<int> numbers)
    {
        ArgumentNullException.ThrowIfNull(numbers);
        if (numbers.Count == 0) return false;
        var values = new Rational[numbers.Count];
        for (var i = 0; i < numbers.Count; i++) values[i] = numbers[i];
        return AnySolution(values);
    }

    /// <summary>The 1,820 multisets of four numbers in 1..13, each sorted ascending, in lexicographic order.</summary>
    public static IReadOnlyList<int[]> AllPuzzles()
    {
        var all = new List<int[]>(1820);
        for (var a = 1; a <= 13; a++)
            for (var b = a; b <= 13; b++)
                for (var c = b; c <= 13; c++)
                    for (var d = c; d <= 13; d++)
                        all.Add([a, b, c, d]);
        return all;
    }

    /// <summary>Applies one operation exactly; false on division by zero or an unknown operator.</summary>
    internal static bool TryApply(Rational left, char op, Rational right, out Rational result)
    {
        switch (op)
        {
            case '+': result = left + right; return true;
            case '-': result = left - right; return true;
            case '*': result = left * right; return true;
            case '/' when !right.IsZero: result = left / right; return true;
            default: result = default; return false;
        }
    }

    // The six ways to combine a pair (i, j): + and * once (larger operand first), - and / both ways.
    private static readonly (bool Swap, char Op)[] Combinations =
        [(false, '+'), (false, '*'), (false, '-'), (true, '-'), (false, '/'), (true, '/')];

    private static void SolveAll(Rational[] values, Node[] nodes, Game24Operation[] ops, int depth,
        List<Solution> found, HashSet<string> seen)
    {
        var n = values.Length;
        if (n == 1)
        {
            if (values[0] != Target) return;
            if (seen.Add(string.Join(" | ", ops))) found.Add(new Solution(ops.ToArray(), nodes[0].Render()));
            return;
        }
        // The next level's arrays are reused across candidates: the recursion copies what it keeps.
        var nextValues = new Rational[n - 1];
        var nextNodes = new Node[n - 1];
        for (var i = 0; i < n; i++)
            for (var j = i + 1; j < n; j++)
            {
                var k = 0;
                for (var m = 0; m < n; m++)
                    if (m != i && m != j)
                    {
                        nextValues[k] = values[m];
                        nextNodes[k++] = nodes[m];
                    }
                foreach (var (swap, op) in Combinations)
                {
                    int l = i, r = j;
                    if (op is '+' or '*' ? values[i] < values[j] : swap) (l, r) = (j, i);
                    if (!TryApply(values[l], op, values[r], out var result)) continue;
                    nextValues[n - 2] = result;
                    nextNodes[n - 2] = new Node(result, nodes[l], op, nodes[r]);
                    ops[depth] = new Game24Operation(values[l], op, values[r], result);
                    SolveAll(nextValues, nextNodes, ops, depth + 1, found, seen);
                }
            }
    }

    private static bool AnySolution(Rational[] values)
    {
        var n = values.Length;
        if (n == 1) return values[0] == Target;
        var next = new Rational[n - 1];
        for (var i = 0; i < n; i++)
            for (var j = i + 1; j < n; j++)
            {
                var k = 0;
                for (var m = 0; m < n; m++)
                    if (m != i && m != j) next[k++] = values[m];
                foreach (var (swap, op) in Combinations)
                {
                    var (l, r) = swap ? (values[j], values[i]) : (values[i], values[j]);
                    if (!TryApply(l, op, r, out var result)) continue;
                    next[n - 2] = result;
                    if (AnySolution(next)) return true;
                }
            }
        return false;
    }

    /// <summary>Expression tree, rendered only for solutions (cheaper than building strings at every node).</summary>
    private sealed class Node(Rational value, Node? left = null, char op = ' ', Node? right = null)
    {
        public string Render()
        {
            var sb = new StringBuilder();
            Write(sb, top: true);
            return sb.ToString();
        }

        private void Write(StringBuilder sb, bool top)
        {
            if (left is null || right is null)
            {
                sb.Append(value.ToString());
                return;
            }
            if (!top) sb.Append('(');
            left.Write(sb, top: false);
            sb.Append(' ').Append(op).Append(' ');
            right.Write(sb, top: false);
            if (!top) sb.Append(')');
        }
    }
}

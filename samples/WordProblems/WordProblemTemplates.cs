using System.Globalization;

namespace SelfPlay.Samples.WordProblems;

/// <summary>One arithmetic step of a solution: "a op b = result".</summary>
public sealed record ArithmeticStep(long A, char Op, long B, long Result)
{
    public override string ToString() => $"{A} {Op} {B} = {Result}";
}

/// <summary>A generated problem: the question, the reference steps and the exact answer.</summary>
public sealed record WordProblem(string Question, IReadOnlyList<ArithmeticStep> Steps)
{
    public long Answer => Steps[^1].Result;
}

/// <summary>
/// GSM8K-style multi-step word problems from templates. A task input is "template name item v0 v1 ..." (indices and
/// the template's numbers), from which the question, the solution and the exact answer are derived.
/// </summary>
public static class WordProblemTemplates
{
    static readonly string[] Names = ["Ann", "Ben", "Cal", "Dee", "Eva", "Finn", "Gus", "Ivy", "Joe", "Kim"];
    static readonly string[] Items = ["apples", "pens", "cards", "eggs", "rocks", "books", "shells", "stamps"];

    /// <summary>Text ({N} name, {I} item, {0}.. numbers), number ranges, and the program: operands are vK (numbers), rK (earlier results) or literals.</summary>
    sealed record Template(string Text, (int Min, int Max)[] Ranges, string[] Program);

    static readonly Template[] Templates =
    [
        new("{N} has {0} {I}. {N} buys {1} packs of {2} {I}. How many {I} does {N} have now?", [(2, 30), (2, 6), (2, 9)], ["v1 * v2", "v0 + r0"]),
        new("{N} has {0} {I} and gives {1} to each of {2} friends. How many {I} are left?", [(20, 90), (2, 6), (2, 5)], ["v1 * v2", "v0 - r0"]),
        new("A box holds {0} {I}. {N} fills {1} boxes, then sells {2} {I}. How many {I} are left?", [(3, 12), (2, 9), (1, 20)], ["v0 * v1", "r0 - v2"]),
        new("{N} reads {0} pages a day for {1} days, then {2} more pages. How many pages in all?", [(3, 20), (2, 9), (1, 30)], ["v0 * v1", "r0 + v2"]),
        new("{N} has {0} {I}, loses {1}, then doubles the rest. How many {I} now?", [(10, 60), (1, 9)], ["v0 - v1", "r0 * 2"]),
        new("{0} {I} are shared equally by {1} kids. Each kid then gets {2} more. How many {I} does each kid have?", [(6, 90), (2, 9), (1, 9)], ["v0 / v1", "r0 + v2"]),
        new("{N} earns {0} coins a week for {1} weeks and spends {2} coins. How many coins are left?", [(5, 20), (2, 8), (1, 30)], ["v0 * v1", "r0 - v2"]),
        new("{N} buys {0} bags of {1} {I} and {2} bags of {3} {I}. How many {I} in all?", [(2, 6), (2, 9), (2, 6), (2, 9)], ["v0 * v1", "v2 * v3", "r0 + r1"]),
        new("{N} has {0} {I}, gives half away, then finds {1} more. How many {I} now?", [(4, 60), (1, 20)], ["v0 / 2", "r0 + v1"]),
        new("{N} has {0} {I}. Max has {1} more than {N}. How many {I} do they have together?", [(3, 40), (2, 20)], ["v0 + v1", "v0 + r0"]),
    ];

    public static int Count => Templates.Length;

    /// <summary>The problem of a task input; a FormatException for an input no template makes.</summary>
    public static WordProblem Parse(string input)
    {
        var parts = (input ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var values = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out values[i]))
                throw new FormatException($"a word-problem task is 'template name item numbers...', got '{input}'");
        if (values.Length < 3 || values[0] >= Templates.Length || values[1] >= Names.Length || values[2] >= Items.Length
            || values.Length != 3 + Templates[values[0]].Ranges.Length)
            throw new FormatException($"not a word-problem task: '{input}'");
        return Make(Templates[values[0]], Names[values[1]], Items[values[2]], values[3..])
               ?? throw new FormatException($"the numbers of '{input}' do not make a problem with whole positive steps");
    }

    /// <summary>count distinct task inputs, seeded; every one has whole positive steps and an answer under 1000.</summary>
    public static List<string> Generate(int count, int seed, IReadOnlySet<string>? exclude = null)
    {
        var random = new Random(seed);
        var seen = new HashSet<string>(exclude ?? new HashSet<string>());
        var tasks = new List<string>(count);
        for (var attempts = 0; tasks.Count < count; attempts++)
        {
            if (attempts > count * 1000) throw new InvalidOperationException($"cannot generate {count} distinct word problems");
            var t = random.Next(Templates.Length);
            var numbers = Templates[t].Ranges.Select(r => random.Next(r.Min, r.Max + 1)).ToArray();
            var (name, item) = (random.Next(Names.Length), random.Next(Items.Length));
            if (Make(Templates[t], Names[name], Items[item], numbers) is null) continue;
            var input = $"{t} {name} {item} {string.Join(' ', numbers)}";
            if (seen.Add(input)) tasks.Add(input);
        }
        return tasks;
    }

    /// <summary>Exact arithmetic on whole numbers: false for a negative or zero result or an inexact division.</summary>
    public static bool TryApply(long a, char op, long b, out long result)
    {
        result = op switch
        {
            '+' => a + b,
            '-' => a - b,
            '*' => Math.Abs(a) < 1_000_000 && Math.Abs(b) < 1_000_000 ? a * b : long.MinValue,
            '/' => b != 0 && a % b == 0 ? a / b : long.MinValue,
            _ => long.MinValue,
        };
        return result != long.MinValue;
    }

    static WordProblem? Make(Template template, string name, string item, int[] numbers)
    {
        var results = new List<long>();
        var steps = new List<ArithmeticStep>();
        foreach (var line in template.Program)
        {
            var p = line.Split(' ');
            var (a, b) = (Operand(p[0]), Operand(p[2]));
            if (!TryApply(a, p[1][0], b, out var r) || r <= 0 || r >= 1000 || r == a && p[1][0] is '*' or '/') return null;
            results.Add(r);
            steps.Add(new ArithmeticStep(a, p[1][0], b, r));
        }
        var text = template.Text.Replace("{N}", name).Replace("{I}", item);
        for (var i = 0; i < numbers.Length; i++) text = text.Replace("{" + i + "}", numbers[i].ToString(CultureInfo.InvariantCulture));
        return new WordProblem(text, steps);

        long Operand(string o) => o[0] switch
        {
            'v' => numbers[o[1] - '0'],
            'r' => results[o[1] - '0'],
            _ => long.Parse(o, CultureInfo.InvariantCulture),
        };
    }
}

using System.Globalization;
using System.Reflection;

namespace SelfPlay.Samples.ToolUse;

/// <summary>A tool call the tool refuses (bad arguments, unknown entity, division by zero): the reason is one line.</summary>
public sealed class ToolError(string message) : Exception(message);

/// <summary>A tool: a name and a call from an argument string to a result string.</summary>
public interface ITool
{
    string Name { get; }
    string Call(string arguments);
}

/// <summary>The tools an agent may call, by name: calc, convert, lookup, eval.</summary>
public sealed class ToolRegistry
{
    readonly Dictionary<string, ITool> _tools;

    public ToolRegistry(IEnumerable<ITool> tools) => _tools = tools.ToDictionary(t => t.Name);

    public static ToolRegistry Default { get; } =
        new([new Calculator(), new UnitConverter(), new KnowledgeLookup(KnowledgeBase.Shipped), new ExpressionEvaluator()]);

    public IReadOnlyCollection<string> Names => _tools.Keys;

    /// <summary>The tool's result, or a <see cref="ToolError"/> for an unknown tool or a call it refuses.</summary>
    public string Call(string tool, string arguments)
    {
        if (!_tools.TryGetValue(tool, out var t)) throw new ToolError($"unknown tool '{Short(tool)}' (tools: {string.Join(", ", _tools.Keys.Order())})");
        try { return t.Call(arguments); }
        catch (Exception e) when (e is OverflowException or DivideByZeroException) { throw new ToolError($"{tool}: {e.Message}"); }
    }

    internal static string Short(string text) => text.Length > 24 ? text[..24] + "..." : text;

    /// <summary>Exact decimal arithmetic rounded to 4 places, written without trailing zeros.</summary>
    public static string Format(decimal value) => Math.Round(value, 4).ToString("0.####", CultureInfo.InvariantCulture);

    public static decimal ParseNumber(string text, string tool) =>
        text.Length <= 20 && decimal.TryParse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var v)
            ? v
            : throw new ToolError($"{tool}: '{Short(text)}' is not a number");
}

/// <summary>calc[a op b]: one operation on two numbers.</summary>
public sealed class Calculator : ITool
{
    public string Name => "calc";

    public string Call(string arguments)
    {
        var parts = arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 3 || parts[1].Length != 1 || !"+-*/".Contains(parts[1][0]))
            throw new ToolError("calc: expected '<number> <op> <number>' with op one of + - * /");
        var (a, b) = (ToolRegistry.ParseNumber(parts[0], Name), ToolRegistry.ParseNumber(parts[2], Name));
        return ToolRegistry.Format(parts[1][0] switch
        {
            '+' => a + b,
            '-' => a - b,
            '*' => a * b,
            _ => b == 0 ? throw new ToolError("calc: division by zero") : a / b,
        });
    }
}

/// <summary>convert[value unit to unit]: exact conversions within length (cm, m, km), mass (g, kg, t), speed (km/h, m/h).</summary>
public sealed class UnitConverter : ITool
{
    static readonly Dictionary<string, (string Dimension, decimal Factor)> Units = new()
    {
        ["cm"] = ("length", 0.01m), ["m"] = ("length", 1m), ["km"] = ("length", 1000m),
        ["g"] = ("mass", 0.001m), ["kg"] = ("mass", 1m), ["t"] = ("mass", 1000m),
        ["m/h"] = ("speed", 1m), ["km/h"] = ("speed", 1000m),
    };

    public string Name => "convert";

    public static bool Known(string unit) => Units.ContainsKey(unit);

    public string Call(string arguments)
    {
        var parts = arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 4 || parts[2] != "to") throw new ToolError("convert: expected '<number> <unit> to <unit>'");
        var value = ToolRegistry.ParseNumber(parts[0], Name);
        if (!Units.TryGetValue(parts[1], out var from)) throw new ToolError($"convert: unknown unit '{ToolRegistry.Short(parts[1])}'");
        if (!Units.TryGetValue(parts[3], out var to)) throw new ToolError($"convert: unknown unit '{ToolRegistry.Short(parts[3])}'");
        if (from.Dimension != to.Dimension) throw new ToolError($"convert: cannot convert {from.Dimension} to {to.Dimension}");
        return ToolRegistry.Format(value * from.Factor / to.Factor) + " " + parts[3];
    }
}

/// <summary>One fact of the shipped knowledge base.</summary>
public sealed record Fact(string Entity, string Attribute, decimal Value, string Unit);

/// <summary>The small knowledge base shipped with the sample (knowledge.tsv: entity, attribute, value, unit).</summary>
public sealed class KnowledgeBase
{
    public static KnowledgeBase Shipped { get; } = Load();

    public IReadOnlyList<Fact> Facts { get; }
    readonly Dictionary<(string, string), Fact> _byKey;

    public KnowledgeBase(IReadOnlyList<Fact> facts)
    {
        Facts = facts;
        _byKey = facts.ToDictionary(f => (f.Entity, f.Attribute));
    }

    public Fact? Find(string entity, string attribute) => _byKey.GetValueOrDefault((entity, attribute));

    static KnowledgeBase Load()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("SelfPlay.Samples.ToolUse.knowledge.tsv")
            ?? throw new InvalidOperationException("knowledge.tsv is not embedded");
        using var reader = new StreamReader(stream);
        var facts = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(line => line.Split('\t'))
            .Select(f => new Fact(f[0], f[1], decimal.Parse(f[2], CultureInfo.InvariantCulture), f[3].Trim()))
            .ToList();
        return new KnowledgeBase(facts);
    }
}

/// <summary>lookup[entity attribute]: a fact with its unit.</summary>
public sealed class KnowledgeLookup(KnowledgeBase knowledge) : ITool
{
    public string Name => "lookup";

    public string Call(string arguments)
    {
        var parts = arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 2) throw new ToolError("lookup: expected '<entity> <attribute>'");
        var fact = knowledge.Find(parts[0], parts[1])
                   ?? throw new ToolError($"lookup: no {ToolRegistry.Short(parts[1])} known for '{ToolRegistry.Short(parts[0])}'");
        return ToolRegistry.Format(fact.Value) + " " + fact.Unit;
    }
}

/// <summary>
/// eval[expression]: a sandboxed evaluator of + - * /, parentheses and unary minus over decimal numbers. It parses
/// the text itself (nothing is compiled or executed), and bounds length and nesting.
/// </summary>
public sealed class ExpressionEvaluator : ITool
{
    const int MaxLength = 120, MaxDepth = 16;

    public string Name => "eval";

    public string Call(string arguments)
    {
        if (arguments.Length > MaxLength) throw new ToolError($"eval: expression longer than {MaxLength} characters");
        var parser = new Parser(arguments);
        var value = parser.Expression(0);
        parser.SkipSpaces();
        if (!parser.AtEnd) throw new ToolError($"eval: unexpected '{parser.Current}' at {parser.Position + 1}");
        return ToolRegistry.Format(value);
    }

    sealed class Parser(string text)
    {
        public int Position { get; private set; }
        public bool AtEnd => Position >= text.Length;
        public char Current => text[Position];

        public void SkipSpaces()
        {
            while (!AtEnd && Current == ' ') Position++;
        }

        public decimal Expression(int depth)
        {
            var value = Term(depth);
            for (SkipSpaces(); !AtEnd && Current is '+' or '-'; SkipSpaces())
            {
                var op = text[Position++];
                var right = Term(depth);
                value = op == '+' ? value + right : value - right;
            }
            return value;
        }

        decimal Term(int depth)
        {
            var value = Factor(depth);
            for (SkipSpaces(); !AtEnd && Current is '*' or '/'; SkipSpaces())
            {
                var op = text[Position++];
                var right = Factor(depth);
                if (op == '/' && right == 0) throw new ToolError("eval: division by zero");
                value = op == '*' ? value * right : value / right;
            }
            return value;
        }

        decimal Factor(int depth)
        {
            if (depth > MaxDepth) throw new ToolError($"eval: nested deeper than {MaxDepth}");
            SkipSpaces();
            if (AtEnd) throw new ToolError("eval: the expression ends too early");
            if (Current == '-')
            {
                Position++;
                return -Factor(depth + 1);
            }
            if (Current == '(')
            {
                Position++;
                var value = Expression(depth + 1);
                SkipSpaces();
                if (AtEnd || Current != ')') throw new ToolError("eval: missing ')'");
                Position++;
                return value;
            }
            var start = Position;
            while (!AtEnd && (char.IsAsciiDigit(Current) || Current == '.')) Position++;
            if (start == Position) throw new ToolError($"eval: unexpected '{Current}' at {Position + 1}");
            return ToolRegistry.ParseNumber(text[start..Position], "eval");
        }
    }
}

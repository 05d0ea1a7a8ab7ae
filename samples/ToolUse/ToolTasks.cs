namespace SelfPlay.Samples.ToolUse;

/// <summary>A tool-use task: the question, a reference sequence of calls ending in answer[...], and the exact answer.</summary>
public sealed record ToolTask(string Question, IReadOnlyList<string> ReferenceCalls, decimal Answer);

/// <summary>
/// Multi-step questions over the knowledge base that need several tool calls. A task input is
/// "kind attribute entity... [unit]": sum, diff, conv (one fact in another unit), avg (of three, with eval),
/// sumconv (a sum in another unit).
/// </summary>
public static class ToolTasks
{
    static readonly string[] Kinds = ["sum", "diff", "conv", "avg", "sumconv"];

    /// <summary>The units a fact's unit converts to, for conv and sumconv.</summary>
    static readonly Dictionary<string, string[]> Targets = new()
    {
        ["m"] = ["km", "cm"], ["km"] = ["m"], ["kg"] = ["t", "g"], ["km/h"] = ["m/h"],
    };

    public static ToolTask Parse(string input, KnowledgeBase knowledge)
    {
        var p = (input ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        string Bad() => throw new FormatException($"not a tool-use task: '{(input is { Length: > 40 } ? input[..40] : input)}'");
        if (p.Length < 3 || !Kinds.Contains(p[0])) Bad();
        var (kind, attribute) = (p[0], p[1]);
        var entityCount = kind switch { "conv" => 1, "avg" => 3, _ => 2 };
        var hasTarget = kind is "conv" or "sumconv";
        if (p.Length != 2 + entityCount + (hasTarget ? 1 : 0)) Bad();
        var facts = p[2..(2 + entityCount)].Select(e => knowledge.Find(e, attribute) ?? throw new FormatException($"no {attribute} known for '{e}'")).ToList();
        var unit = facts[0].Unit;
        var target = hasTarget ? p[^1] : unit;
        if (hasTarget && !(Targets.TryGetValue(unit, out var allowed) && allowed.Contains(target))) Bad();

        var calls = facts.Select(f => $"lookup[{f.Entity} {attribute}]").ToList();
        var v = facts.Select(f => ToolRegistry.Format(f.Value)).ToList();
        var names = facts.Select(f => f.Entity).ToList();
        decimal answer;
        string question;
        switch (kind)
        {
            case "sum":
                answer = facts[0].Value + facts[1].Value;
                calls.Add($"calc[{v[0]} + {v[1]}]");
                question = $"total {attribute} of {names[0]} and {names[1]} in {unit}?";
                break;
            case "diff":
                answer = facts[0].Value - facts[1].Value;
                if (answer <= 0) Bad();
                calls.Add($"calc[{v[0]} - {v[1]}]");
                question = $"how much more {attribute} has {names[0]} than {names[1]} in {unit}?";
                break;
            case "conv":
                answer = Convert(facts[0].Value, unit, target);
                calls.Add($"convert[{v[0]} {unit} to {target}]");
                question = $"{attribute} of {names[0]} in {target}?";
                break;
            case "avg":
                answer = Math.Round((facts[0].Value + facts[1].Value + facts[2].Value) / 3, 4);
                calls.Add($"eval[({v[0]} + {v[1]} + {v[2]}) / 3]");
                question = $"average {attribute} of {names[0]}, {names[1]} and {names[2]} in {unit}?";
                break;
            default:
                var sum = facts[0].Value + facts[1].Value;
                answer = Convert(sum, unit, target);
                calls.Add($"calc[{v[0]} + {v[1]}]");
                calls.Add($"convert[{ToolRegistry.Format(sum)} {unit} to {target}]");
                question = $"total {attribute} of {names[0]} and {names[1]} in {target}?";
                break;
        }
        calls.Add($"answer[{ToolRegistry.Format(answer)}]");
        return new ToolTask("Q: " + question, calls, answer);
    }

    static decimal Convert(decimal value, string from, string to) =>
        decimal.Parse(new UnitConverter().Call($"{ToolRegistry.Format(value)} {from} to {to}").Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>count distinct task inputs, seeded.</summary>
    public static List<string> Generate(int count, int seed, KnowledgeBase knowledge, IReadOnlySet<string>? exclude = null)
    {
        var random = new Random(seed);
        var byAttribute = knowledge.Facts.GroupBy(f => f.Attribute).ToDictionary(g => g.Key, g => g.Select(f => f.Entity).ToArray());
        var attributes = byAttribute.Keys.Order().ToArray();
        var seen = new HashSet<string>(exclude ?? new HashSet<string>());
        var tasks = new List<string>(count);
        for (var attempts = 0; tasks.Count < count; attempts++)
        {
            if (attempts > count * 1000) throw new InvalidOperationException($"cannot generate {count} distinct tool-use tasks (the knowledge base is small)");
            var kind = Kinds[random.Next(Kinds.Length)];
            var attribute = attributes[random.Next(attributes.Length)];
            var entities = byAttribute[attribute].OrderBy(_ => random.Next()).Take(kind switch { "conv" => 1, "avg" => 3, _ => 2 }).ToList();
            if (kind == "diff") entities = entities.OrderByDescending(e => knowledge.Find(e, attribute)!.Value).ToList();
            var input = $"{kind} {attribute} {string.Join(' ', entities)}";
            if (kind is "conv" or "sumconv")
            {
                var targets = Targets[knowledge.Find(entities[0], attribute)!.Unit];
                input += " " + targets[random.Next(targets.Length)];
            }
            try { Parse(input, knowledge); }
            catch (FormatException) { continue; }
            if (seen.Add(input)) tasks.Add(input);
        }
        return tasks;
    }
}

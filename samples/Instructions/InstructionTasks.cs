using System.Text.Json;

namespace SelfPlay.Samples.Instructions;

/// <summary>An instruction: a topic, a length bound and 1 to 4 more constraints. Task input: "cats|max:6|has:sun|lower".</summary>
public sealed record Instruction(string Topic, IReadOnlyList<Constraint> Constraints)
{
    public string Prompt => $"Write about {Topic}: {string.Join(", ", Constraints.Select(c => c.Describe()))}.";

    public static Instruction Parse(string input)
    {
        var parts = (input ?? "").Split('|');
        if (parts.Length is < 2 or > 6 || !InstructionTasks.Topics.ContainsKey(parts[0]))
            throw new FormatException($"not an instruction task: '{(input is { Length: > 40 } ? input[..40] : input)}'");
        var constraints = parts[1..].Select(c => new Constraint(c)).ToList();
        foreach (var c in constraints) c.Describe(); // unknown kinds fail here
        return new Instruction(parts[0], constraints);
    }

    /// <summary>The programmatic judge: the share of constraints kept, and the first one broken.</summary>
    public (double Share, string Reason) Judge(string response)
    {
        if (string.IsNullOrWhiteSpace(response)) return (0, "empty response");
        // A response that asks for JSON and is not JSON is unusable as a whole: nothing else is counted.
        if (Constraints.Any(c => c.Kind == "json") && Constraint.JsonText(response) is null) return (0, "not a JSON object with a \"text\" string");
        var text = Constraints.Any(c => c.Kind == "json") ? Constraint.JsonText(response) ?? response : response;
        var broken = Constraints.Select(c => (c, Why: c.Check(response, text))).Where(x => x.Why is not null).ToList();
        return broken.Count == 0
            ? (1, "all constraints kept")
            : ((double)(Constraints.Count - broken.Count) / Constraints.Count, $"{broken.Count} of {Constraints.Count} broken: {broken[0].Why}");
    }
}

/// <summary>Topics with their words, the constraint generator, and a reference response that keeps every constraint.</summary>
public static class InstructionTasks
{
    public static readonly IReadOnlyDictionary<string, string[]> Topics = new Dictionary<string, string[]>
    {
        ["cats"] = ["cats", "purr", "nap", "soft", "paws", "milk", "play"],
        ["rain"] = ["rain", "clouds", "drops", "wet", "grey", "puddles", "cool"],
        ["sea"] = ["sea", "waves", "salt", "blue", "ships", "sand", "wind"],
        ["bread"] = ["bread", "warm", "crust", "flour", "bake", "oven", "butter"],
        ["trees"] = ["trees", "leaves", "green", "roots", "shade", "bark", "tall"],
        ["night"] = ["night", "stars", "moon", "dark", "quiet", "sleep", "owls"],
        ["music"] = ["music", "songs", "drums", "notes", "dance", "loud", "joy"],
        ["snow"] = ["snow", "cold", "white", "flakes", "ice", "winter", "sled"],
    };
    static readonly string[] Extra = ["sun", "gold", "home", "fast", "red", "old", "kind"];

    /// <summary>
    /// count distinct instructions, seeded: a topic, a length bound, then <paramref name="extra"/> − 1 or
    /// <paramref name="extra"/> (at least 1) of keyword, forbidden word, casing, format.
    /// </summary>
    public static List<string> Generate(int count, int seed, IReadOnlySet<string>? exclude = null, int extra = 2)
    {
        if (extra is < 1 or > 4) throw new ArgumentOutOfRangeException(nameof(extra), "1..4 kinds of constraint beside the length");
        var random = new Random(seed);
        var topics = Topics.Keys.Order().ToArray();
        var seen = new HashSet<string>(exclude ?? new HashSet<string>());
        var tasks = new List<string>(count);
        for (var attempts = 0; tasks.Count < count; attempts++)
        {
            if (attempts > count * 1000) throw new InvalidOperationException($"cannot generate {count} distinct instructions");
            var topic = topics[random.Next(topics.Length)];
            var words = Topics[topic];
            var codes = new List<string> { random.Next(2) == 0 ? $"max:{random.Next(3, 8)}" : $"min:{random.Next(2, 6)}" };
            var kinds = new[] { "has", "no", "case", "format" }.OrderBy(_ => random.Next()).Take(random.Next(Math.Max(1, extra - 1), extra + 1));
            foreach (var kind in kinds)
                codes.Add(kind switch
                {
                    "has" => "has:" + Extra[random.Next(Extra.Length)],
                    "no" => "no:" + words[random.Next(1, words.Length)],
                    "case" => random.Next(2) == 0 ? "lower" : "upper",
                    _ => new[] { "end:!", "quote", "json" }[random.Next(3)],
                });
            var input = topic + "|" + string.Join('|', codes);
            if (Reference(Instruction.Parse(input), random) is null) continue;
            if (seen.Add(input)) tasks.Add(input);
        }
        return tasks;
    }

    /// <summary>A response that keeps every constraint: topic words (not the forbidden one), the keyword, cased and formatted.</summary>
    public static string? Reference(Instruction instruction, Random random)
    {
        var c = instruction.Constraints;
        string? Arg(string kind) => c.FirstOrDefault(x => x.Kind == kind)?.Argument;
        var max = Arg("max") is { } mx ? int.Parse(mx) : 7;
        var min = Arg("min") is { } mn ? int.Parse(mn) : 1;
        var pool = Topics[instruction.Topic].Where(w => w != Arg("no")).OrderBy(_ => random.Next()).ToList();
        var words = new List<string>();
        if (Arg("has") is { } keyword) words.Add(keyword);
        words.Insert(0, instruction.Topic);
        foreach (var w in pool)
            if (words.Count < Math.Max(min, Math.Min(max, 4)) && !words.Contains(w)) words.Add(w);
        if (words.Count < min || words.Count > max) return null;
        var text = string.Join(' ', words);
        if (c.Any(x => x.Kind == "upper")) text = text.ToUpperInvariant();
        if (Arg("end") is { } end) text += end;
        if (c.Any(x => x.Kind == "quote")) text = "\"" + text + "\"";
        if (c.Any(x => x.Kind == "json")) text = JsonSerializer.Serialize(new { text });
        return instruction.Judge(text).Share == 1 ? text : null;
    }
}

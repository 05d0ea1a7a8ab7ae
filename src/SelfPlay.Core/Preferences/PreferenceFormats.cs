using System.Text.Json;
using System.Text.Json.Nodes;

namespace SelfPlay.Core.Preferences;

/// <summary>
/// JSONL interchange with Python preference tools: TRL's preference format (prompt/chosen/rejected), its
/// conversational form (the prompt a user turn, chosen and rejected assistant turns), its unpaired KTO form
/// (prompt/completion/label, one record per candidate), TRL's stepwise supervision format (prompt/completions/labels)
/// and UltraInteract pair records (id, parent_id, task, dataset, trajectory, chosen, rejected). Pairs are exported
/// best vs worst candidate.
/// </summary>
public static class PreferenceFormats
{
    public static readonly IReadOnlyList<string> Names = ["trl-preference", "trl-conversational", "trl-kto", "trl-stepwise", "ultrainteract"];

    static JsonArray Turn(string role, string content) => new(new JsonObject { ["role"] = role, ["content"] = content });

    static JsonArray Messages(IEnumerable<(string Role, string Content)> turns) =>
        new([.. turns.Select(t => (JsonNode)new JsonObject { ["role"] = t.Role, ["content"] = t.Content })]);

    /// <summary>One JSON object per line.</summary>
    /// <param name="turns">the campaign's chat format, reading a rendered text back as its turns (role, content): then the
    /// conversational format's prompt and completions are those turns (a completion's tool turns included) with the
    /// template's markers removed, for a trainer that applies the template itself; null: the prompt is one user turn and
    /// each completion one assistant turn</param>
    public static IEnumerable<string> Export(IEnumerable<PreferenceExample> examples, string format, string task = "", string dataset = "",
        Func<string, IReadOnlyList<(string Role, string Content)>>? turns = null)
    {
        JsonArray PromptTurns(string prompt) => turns is null ? Turn("user", prompt) : Messages(turns(prompt));
        JsonArray CompletionTurns(string prompt, string completion)
        {
            if (turns is null) return Turn("assistant", completion);
            var before = turns(prompt).Count;
            return Messages(turns(prompt + completion).Skip(before));
        }
        var index = 0;
        foreach (var e in examples.Where(e => e.Kind != ExampleKind.Advantage && e.Candidates.Count >= 2))
        {
            var (chosen, rejected) = (e.Candidates[0], e.Candidates[^1]);
            switch (format)
            {
                case "trl-preference":
                    yield return Line(new JsonObject { ["prompt"] = e.Prompt, ["chosen"] = chosen.Text, ["rejected"] = rejected.Text });
                    break;
                case "trl-conversational":
                    yield return Line(new JsonObject
                    {
                        ["prompt"] = PromptTurns(e.Prompt), ["chosen"] = CompletionTurns(e.Prompt, chosen.Text),
                        ["rejected"] = CompletionTurns(e.Prompt, rejected.Text),
                    });
                    break;
                case "trl-kto":
                    yield return Line(new JsonObject { ["prompt"] = e.Prompt, ["completion"] = chosen.Text, ["label"] = true });
                    yield return Line(new JsonObject { ["prompt"] = e.Prompt, ["completion"] = rejected.Text, ["label"] = false });
                    break;
                case "trl-stepwise":
                    // TRL PRM data: a chosen trajectory's steps are all good; the rejected one's are bad from where it leaves
                    // the chosen one (the steps it shares with it are the chosen's steps, good; its last step is always bad).
                    yield return Line(Stepwise(e.Prompt, chosen, _ => true));
                    var shared = Math.Min(SharedSteps(chosen, rejected), rejected.Steps.Count - 1);
                    yield return Line(Stepwise(e.Prompt, rejected, i => i < shared));
                    break;
                case "ultrainteract":
                    yield return Line(new JsonObject
                    {
                        ["id"] = $"{e.Source}_{index}", ["parent_id"] = e.Source, ["task"] = task, ["dataset"] = dataset,
                        ["trajectory"] = new JsonArray(new JsonObject { ["from"] = "user", ["value"] = e.Prompt }),
                        ["chosen"] = chosen.Text, ["rejected"] = rejected.Text,
                    });
                    break;
                default: throw new ArgumentException($"unknown format '{format}' (known: {string.Join(", ", Names)})");
            }
            index++;
        }
    }

    static JsonObject Stepwise(string prompt, Candidate c, Func<int, bool> good) => new()
    {
        ["prompt"] = prompt,
        ["completions"] = new JsonArray([.. c.Steps.Select(s => (JsonNode)JsonValue.Create(s.Text)!)]),
        ["labels"] = new JsonArray([.. c.Steps.Select((_, i) => (JsonNode)JsonValue.Create(good(i))!)]),
    };

    /// <summary>How many leading steps two candidates share (the same text).</summary>
    static int SharedSteps(Candidate a, Candidate b)
    {
        var n = 0;
        while (n < a.Steps.Count && n < b.Steps.Count && a.Steps[n].Text == b.Steps[n].Text) n++;
        return n;
    }

    static string Line(JsonObject o) => o.ToJsonString();

    /// <summary>A malformed record: its 1-based line number and why.</summary>
    public sealed record ImportError(int Line, string Reason);

    /// <summary>
    /// Reads pairs from JSONL. Malformed records are collected with their line numbers; with <paramref name="rejectOnError"/>
    /// the first one throws instead. Stepwise records become pairs within a prompt: every all-good trajectory against
    /// every trajectory with a bad step (records that pair with nothing are reported too).
    /// </summary>
    public static (List<PreferenceExample> Examples, List<ImportError> Errors) Import(IEnumerable<string> lines, string format, string source, bool rejectOnError)
    {
        if (!Names.Contains(format)) throw new ArgumentException($"unknown format '{format}' (known: {string.Join(", ", Names)})");
        var examples = new List<PreferenceExample>();
        var errors = new List<ImportError>();
        var stepwise = new List<(int Line, string Prompt, List<string> Steps, bool Good)>();
        var number = 0;
        foreach (var raw in lines)
        {
            number++;
            if (string.IsNullOrWhiteSpace(raw)) continue;
            try
            {
                var o = JsonNode.Parse(raw) as JsonObject ?? throw new FormatException("not a JSON object");
                switch (format)
                {
                    case "trl-preference":
                        examples.Add(TextPair($"{source}:{number}", Text(o, "prompt", allowEmpty: true), Text(o, "chosen"), Text(o, "rejected")));
                        break;
                    case "trl-conversational":
                        examples.Add(TextPair($"{source}:{number}", Turns(o, "prompt", allowEmpty: true), Turns(o, "chosen"), Turns(o, "rejected")));
                        break;
                    case "trl-kto":
                        var label = o["label"]?.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? o["label"]!.GetValue<bool>()
                            : throw new FormatException("'label' must be a boolean");
                        stepwise.Add((number, Text(o, "prompt", allowEmpty: true), [Text(o, "completion")], label));
                        break;
                    case "ultrainteract":
                        var turns = o["trajectory"] as JsonArray ?? throw new FormatException("'trajectory' must be an array of {from, value}");
                        var prompt = string.Join("\n", turns.Select(t => t is JsonObject turn ? Text(turn, "value", allowEmpty: true)
                            : throw new FormatException("'trajectory' must be an array of {from, value}")));
                        examples.Add(TextPair(o["id"]?.GetValue<string>() ?? $"{source}:{number}", prompt, Text(o, "chosen"), Text(o, "rejected")));
                        break;
                    default:
                        var completions = o["completions"] as JsonArray ?? throw new FormatException("'completions' must be an array of strings");
                        var labels = o["labels"] as JsonArray ?? throw new FormatException("'labels' must be an array of booleans");
                        if (completions.Count == 0 || completions.Count != labels.Count) throw new FormatException("'completions' and 'labels' must be non-empty and equally long");
                        stepwise.Add((number, Text(o, "prompt", allowEmpty: true),
                            [.. completions.Select(c => c?.GetValueKind() == JsonValueKind.String ? c.GetValue<string>() : throw new FormatException("'completions' must hold strings"))],
                            labels.All(l => l?.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? l.GetValue<bool>() : throw new FormatException("'labels' must hold booleans"))));
                        break;
                }
            }
            catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
            {
                if (rejectOnError) throw new InvalidDataException($"{source}:{number}: {e.Message}");
                errors.Add(new ImportError(number, e.Message));
            }
        }
        foreach (var group in stepwise.GroupBy(r => r.Prompt))
        {
            var good = group.Where(r => r.Good).ToList();
            var bad = group.Where(r => !r.Good).ToList();
            foreach (var g in good)
                foreach (var b in bad)
                    examples.Add(PreferenceExample.Pair($"{source}:{g.Line}", group.Key,
                        new Candidate([.. g.Steps.Select(CompletionStep.FromText)], 1), new Candidate([.. b.Steps.Select(CompletionStep.FromText)], 0)));
            if (good.Count == 0 || bad.Count == 0)
                foreach (var r in group)
                {
                    var reason = "no trajectory of the same prompt to pair with (needs one all-good and one with a bad step)";
                    if (rejectOnError) throw new InvalidDataException($"{source}:{r.Line}: {reason}");
                    errors.Add(new ImportError(r.Line, reason));
                }
        }
        return (examples, errors);
    }

    static PreferenceExample TextPair(string source, string prompt, string chosen, string rejected) =>
        PreferenceExample.Pair(source, prompt, new Candidate([CompletionStep.FromText(chosen)], 1), new Candidate([CompletionStep.FromText(rejected)], 0));

    /// <summary>The contents of a list of {role, content} turns, joined by newlines.</summary>
    static string Turns(JsonObject o, string key, bool allowEmpty = false)
    {
        if (o[key] is not JsonArray turns) throw new FormatException($"'{key}' must be an array of {{role, content}} turns");
        var text = string.Join("\n", turns.Select(t => t is JsonObject turn ? Text(turn, "content", allowEmpty: true)
            : throw new FormatException($"'{key}' must be an array of {{role, content}} turns")));
        if (!allowEmpty && text.Length == 0) throw new FormatException($"'{key}' is empty");
        return text;
    }

    static string Text(JsonObject o, string key, bool allowEmpty = false)
    {
        var node = o[key];
        if (node is null || node.GetValueKind() != JsonValueKind.String) throw new FormatException($"'{key}' must be a string");
        var value = node.GetValue<string>();
        if (!allowEmpty && value.Length == 0) throw new FormatException($"'{key}' is empty");
        return value;
    }
}

using System.Text.Json;

namespace SelfPlay.Samples.Instructions;

/// <summary>
/// One verifiable constraint of an instruction (IFEval-like): "max:6" (at most 6 words), "min:3" (at least 3 words),
/// "has:sun" (use the word), "no:dog" (never use the word), "lower" / "upper" (casing), "end:!" (end with "!"),
/// "quote" (wrapped in double quotes), "json" (a JSON object {"text": "..."}; the other constraints then apply to the text).
/// </summary>
public sealed record Constraint(string Code)
{
    public string Kind => Code.Split(':')[0];
    public string Argument => Code.Contains(':') ? Code[(Code.IndexOf(':') + 1)..] : "";

    /// <summary>How the instruction states it.</summary>
    public string Describe() => Kind switch
    {
        "max" => $"at most {Argument} words",
        "min" => $"at least {Argument} words",
        "has" => $"use {Argument}",
        "no" => $"avoid {Argument}",
        "lower" => "lowercase",
        "upper" => "uppercase",
        "end" => $"end with {Argument}",
        "quote" => "in quotes",
        "json" => "as json",
        _ => throw new FormatException($"unknown constraint '{Code}'"),
    };

    /// <summary>Null when the response keeps the constraint, else why not. <paramref name="text"/> is the response, or its JSON text.</summary>
    public string? Check(string response, string text)
    {
        var words = Words(text);
        return Kind switch
        {
            "max" => words.Length <= int.Parse(Argument) ? null : $"{words.Length} words, more than {Argument}",
            "min" => words.Length >= int.Parse(Argument) ? null : $"{words.Length} words, fewer than {Argument}",
            "has" => words.Contains(Argument, StringComparer.OrdinalIgnoreCase) ? null : $"does not use '{Argument}'",
            "no" => words.Contains(Argument, StringComparer.OrdinalIgnoreCase) ? $"uses '{Argument}'" : null,
            "lower" => text.Any(char.IsUpper) ? "not all lowercase" : null,
            "upper" => text.Any(char.IsLower) ? "not all uppercase" : null,
            "end" => text.TrimEnd().EndsWith(Argument, StringComparison.Ordinal) ? null : $"does not end with '{Argument}'",
            "quote" => text.Length >= 2 && text[0] == '"' && text[^1] == '"' ? null : "not wrapped in double quotes",
            "json" => JsonText(response) is null ? "not a JSON object with a \"text\" string" : null,
            _ => $"unknown constraint '{Code}'",
        };
    }

    public static string[] Words(string text) =>
        text.Split([' ', ',', '.', '!', '?', '"', ';', ':'], StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The "text" of a JSON object response, or null when the response is not one.</summary>
    public static string? JsonText(string response)
    {
        try
        {
            using var doc = JsonDocument.Parse(response, new JsonDocumentOptions { MaxDepth = 8 });
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("text", out var text)
                   && text.ValueKind == JsonValueKind.String ? text.GetString() : null;
        }
        catch (JsonException) { return null; }
    }
}

using System.Text.RegularExpressions;

namespace SelfPlay.Models.Tokenization;

public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// The chat formats of the supported model families, recognised from the Jinja <c>chat_template</c> of
/// tokenizer_config.json by their marker tokens (no Jinja engine): ChatML (Qwen), Llama 3 headers, Mistral [INST],
/// and a plain "role: content" format for checkpoints without a template. BOS is not part of the text.
/// </summary>
public sealed record ChatTemplate(string Kind)
{
    public static readonly ChatTemplate ChatMl = new("chatml"), Llama3 = new("llama3"), Mistral = new("mistral"), Plain = new("plain");

    public static ChatTemplate Detect(string? jinja) => jinja switch
    {
        null or "" => Plain,
        _ when jinja.Contains("<|im_start|>", StringComparison.Ordinal) => ChatMl,
        _ when jinja.Contains("<|start_header_id|>", StringComparison.Ordinal) => Llama3,
        _ when jinja.Contains("[INST]", StringComparison.Ordinal) => Mistral,
        _ => throw new InvalidDataException($"{HfTokenizer.ConfigFileName}: chat_template is not one of the supported formats (ChatML, Llama 3, Mistral)"),
    };

    public static readonly string[] Settings = ["auto", "none", "chatml", "llama3", "mistral"];

    /// <summary>
    /// policy.chat-template: the format the environment's prompt is rendered in, or null for none. "auto" reads the
    /// checkpoint's tokenizer_config.json chat_template (none when it has none). A format whose marker tokens the
    /// tokenizer lacks cannot be rendered: an error naming the token.
    /// </summary>
    public static ChatTemplate? ForPolicy(string setting, string? jinja, ITokenizer tokenizer)
    {
        var template = setting switch
        {
            "none" => null,
            "auto" => string.IsNullOrEmpty(jinja) ? null : Detect(jinja),
            "chatml" => ChatMl,
            "llama3" => Llama3,
            "mistral" => Mistral,
            _ => throw new ArgumentException($"policy.chat-template must be one of {string.Join(", ", Settings)}, got '{setting}'"),
        };
        foreach (var marker in template?.Markers ?? [])
            if (tokenizer.Encode(marker).Length != 1)
                throw new InvalidDataException($"policy.chat-template = {template!.Kind}: the tokenizer has no {marker} token, so the template cannot be rendered");
        return template;
    }

    /// <summary>The special tokens the format is written with (each must be one token of the tokenizer).</summary>
    public IReadOnlyList<string> Markers => Kind switch
    {
        "chatml" => ["<|im_start|>", "<|im_end|>"],
        "llama3" => ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        _ => [],
    };

    /// <summary>
    /// What wraps the text an environment writes after a policy step (a tool result) as a turn of its own: the
    /// assistant turn's end and the environment's turn opening, then its end and the assistant turn reopened. The
    /// environment's role: ChatML "tool", Llama 3.1 "ipython", Mistral (no tool role before its v3 tokens) a user turn.
    /// </summary>
    public (string Open, string Close) EnvironmentTurn => Kind switch
    {
        "chatml" => ("<|im_end|>\n<|im_start|>tool\n", "<|im_end|>\n<|im_start|>assistant\n"),
        "llama3" => ("<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n", "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"),
        "mistral" => ("</s>[INST] ", " [/INST]"),
        _ => ("\ntool: ", "\nassistant: "),
    };

    /// <summary>
    /// The turns of a text in this format (a rendered prompt followed by steps and environment turns), in order, each
    /// with its content as written; an assistant turn left open at the end is one turn, an empty one is dropped. What
    /// the conversational export writes as messages.
    /// </summary>
    public IReadOnlyList<ChatMessage> Parse(string text)
    {
        var turns = new List<ChatMessage>();
        void Add(string role, string content)
        {
            if (content.Length > 0) turns.Add(new ChatMessage(role, content));
        }
        const RegexOptions Options = RegexOptions.Singleline;
        switch (Kind)
        {
            case "chatml":
                foreach (Match m in Regex.Matches(text,
                             @"<\|im_start\|>(?<role>[^\n]*)\n(?<content>.*?)(?:<\|im_end\|>\n?|(?=<\|im_start\|>)|$)", Options))
                    Add(m.Groups["role"].Value, m.Groups["content"].Value);
                break;
            case "llama3":
                foreach (Match m in Regex.Matches(text,
                             @"<\|start_header_id\|>(?<role>.*?)<\|end_header_id\|>\n\n(?<content>.*?)(?:<\|eot_id\|>|(?=<\|start_header_id\|>)|$)", Options))
                    Add(m.Groups["role"].Value, m.Groups["content"].Value);
                break;
            case "mistral":
                foreach (Match m in Regex.Matches(text,
                             @"\[INST\] (?<user>.*?) \[/INST\](?<assistant>.*?)(?:</s>|(?=\[INST\])|$)", Options))
                {
                    Add("user", m.Groups["user"].Value);
                    Add("assistant", m.Groups["assistant"].Value);
                }
                break;
            default:
                foreach (Match m in Regex.Matches(text,
                             @"(?:^|\n)(?<role>system|user|assistant|tool): (?<content>.*?)(?=\n(?:system|user|assistant|tool): |$)", Options))
                    Add(m.Groups["role"].Value, m.Groups["content"].Value);
                break;
        }
        return turns;
    }

    /// <summary>An environment prompt as the user turn, followed by the assistant turn's opening (where the steps go).</summary>
    public string RenderPrompt(string prompt) => Render([new ChatMessage("user", prompt)], addGenerationPrompt: true);

    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true)
    {
        var text = new System.Text.StringBuilder();
        switch (Kind)
        {
            case "chatml":
                foreach (var m in messages) text.Append($"<|im_start|>{m.Role}\n{m.Content}<|im_end|>\n");
                if (addGenerationPrompt) text.Append("<|im_start|>assistant\n");
                break;
            case "llama3":
                foreach (var m in messages) text.Append($"<|start_header_id|>{m.Role}<|end_header_id|>\n\n{m.Content.Trim()}<|eot_id|>");
                if (addGenerationPrompt) text.Append("<|start_header_id|>assistant<|end_header_id|>\n\n");
                break;
            case "mistral":
                // The system message, if any, is prepended to the first user turn, as Mistral's template does.
                var system = messages.FirstOrDefault(m => m.Role == "system")?.Content;
                foreach (var m in messages.Where(m => m.Role != "system"))
                {
                    if (m.Role == "user")
                    {
                        text.Append($"[INST] {(system is null ? "" : system + "\n\n")}{m.Content} [/INST]");
                        system = null;
                    }
                    else text.Append($"{m.Content}</s>");
                }
                break;
            default:
                foreach (var m in messages) text.Append($"{m.Role}: {m.Content}\n");
                if (addGenerationPrompt) text.Append("assistant: ");
                break;
        }
        return text.ToString();
    }
}

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

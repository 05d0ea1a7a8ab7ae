using System.Text.Json;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Scoring;
using SelfPlay.Models.Tokenization;

namespace SelfPlay.Cli;

/// <summary><c>selfplay model info|tokenize|score|merge</c>: look into a checkpoint folder, score completions with it (JSON on
/// stdout), merge a LoRA adapter into its base.</summary>
public static class ModelCommand
{
    static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    static string CheckpointOf(CliArgs a) => a.Get("--checkpoint") ?? throw new UsageException("model needs --checkpoint DIR");

    public static int Info(CliArgs a)
    {
        var dir = CheckpointOf(a);
        var config = Checkpoint.ReadConfig(dir);
        using var model = Checkpoint.LoadModel(dir);
        var tokenizer = TokenizerFiles.Load(dir);
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            architecture = config.Architecture,
            parameters = model.ParameterCount(),
            vocabSize = config.VocabSize,
            hiddenSize = config.HiddenSize,
            intermediateSize = config.IntermediateSize,
            layers = config.NumHiddenLayers,
            heads = config.NumAttentionHeads,
            kvHeads = config.NumKeyValueHeads,
            headDim = config.HeadDim,
            ropeTheta = config.RopeTheta,
            ropeScaling = config.RopeScaling?.Type,
            tiedEmbeddings = config.TieWordEmbeddings,
            attentionBias = config.AttentionBias,
            weightFiles = LoraAdapter.IsAdapter(dir) ? [LoraAdapter.WeightsFile] : ModelWeights.Files(dir).Select(Path.GetFileName).ToArray(),
            tokenizer = tokenizer?.GetType().Name,
            lora = model.Lora is { } l ? new { rank = l.Rank, alpha = l.Alpha, targetModules = l.ModuleNames.ToArray(), trainable = model.TrainableParameters().Sum(p => p.numel()) } : null,
        }, Json));
        return 0;
    }

    /// <summary>The checkpoint's tokenizer on a text: ids and token texts, with --special the special tokens Hugging Face
    /// adds (the tokenizer.json post-processor's BOS), as a prompt is encoded for the model.</summary>
    public static int Tokenize(CliArgs a)
    {
        var dir = CheckpointOf(a);
        var text = a.Get("--text") ?? throw new UsageException("model tokenize needs --text TEXT");
        var tokenizer = Checkpoint.LoadTokenizer(dir, out _);
        var ids = a.Has("--special") ? tokenizer.EncodePrompt(text) : tokenizer.Encode(text);
        Console.WriteLine(JsonSerializer.Serialize(new { ids, tokens = ids.Select(tokenizer.TokenText).ToArray() }, Json));
        return 0;
    }

    /// <summary>
    /// Base + adapter → merged full weights (W + α/r·BA) as a Hugging Face folder with the base's tokenizer. The base is
    /// --checkpoint, or the folder the adapter names. An adapter for another base or rank is a one-line error.
    /// </summary>
    public static int Merge(CliArgs a)
    {
        var adapter = a.Get("--adapter") ?? throw new UsageException("model merge needs --adapter DIR");
        var output = a.Get("--out") ?? throw new UsageException("model merge needs --out DIR");
        if (!LoraAdapter.IsAdapter(adapter)) throw new UsageException($"{adapter} has no {LoraAdapter.ConfigFile}: not a LoRA adapter folder");
        var meta = Checkpoint.ReadMeta(adapter);
        var baseDir = a.Get("--checkpoint") ?? LoraAdapter.BaseOf(adapter, meta.Base);
        if (LoraAdapter.IsAdapter(baseDir)) throw new UsageException($"--checkpoint {baseDir} is itself an adapter: give the full-weight base");
        var tokenizer = Checkpoint.LoadTokenizer(baseDir, out _);
        using var adapted = Checkpoint.LoadModel(baseDir);
        LoraAdapter.Load(adapted, adapter);
        using var merged = LoraAdapter.Merge(adapted);
        var sha = Checkpoint.Save(merged, tokenizer, output, meta.PolicyVersion, meta.Environment);
        Console.WriteLine(JsonSerializer.Serialize(new { merged = Path.GetFullPath(output), baseModel = Path.GetFullPath(baseDir), adapter = Path.GetFullPath(adapter), sha256 = sha }, Json));
        return 0;
    }

    static int[] Ids(string text, string option)
    {
        try { return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray(); }
        catch (FormatException) { throw new UsageException($"{option} must be comma-separated token ids, got '{text}'"); }
        catch (OverflowException) { throw new UsageException($"{option} must be comma-separated token ids, got '{text}'"); }
    }

    public static int Score(CliArgs a)
    {
        var dir = CheckpointOf(a);
        var byText = a.Get("--prompt") is not null || a.Get("--completion") is not null;
        var byIds = a.Get("--prompt-ids") is not null || a.Get("--completion-ids") is not null;
        if (byText == byIds) throw new UsageException("model score needs --prompt and --completion, or --prompt-ids and --completion-ids");
        ITokenizer? tokenizer = null;
        int[] prompt, completion;
        if (byText)
        {
            var promptText = a.Get("--prompt") ?? throw new UsageException("--completion needs --prompt");
            var completionText = a.Get("--completion") ?? throw new UsageException("--prompt needs --completion");
            Checkpoint.ReadConfig(dir);
            tokenizer = TokenizerFiles.Load(dir) ?? throw new InvalidDataException(
                $"checkpoint has no tokenizer ({CharTokenizer.FileName} or {HfTokenizer.FileName}): {dir}; use --prompt-ids/--completion-ids");
            prompt = tokenizer.EncodePrompt(promptText);
            completion = tokenizer.Encode(completionText);
        }
        else
        {
            prompt = Ids(a.Get("--prompt-ids") ?? throw new UsageException("--completion-ids needs --prompt-ids"), "--prompt-ids");
            completion = Ids(a.Get("--completion-ids") ?? throw new UsageException("--prompt-ids needs --completion-ids"), "--completion-ids");
        }
        if (prompt.Length == 0) throw new UsageException("the prompt has no tokens");
        if (completion.Length == 0) throw new UsageException("the completion has no tokens");
        using var model = Checkpoint.LoadModel(dir, a.Get("--device") ?? "cpu", a.Get("--dtype") ?? "float32");
        var score = CompletionScorer.Score(model, [new ScoreRequest(prompt, completion)])[0];
        Console.WriteLine(JsonSerializer.Serialize(new
        {
            promptIds = prompt,
            completionIds = completion,
            tokens = completion.Select((id, i) => new { id, text = tokenizer?.Decode([id]), logprob = Math.Round(score.TokenLogProbs[i], 6) }).ToArray(),
            sum = Math.Round(score.Sum, 6),
            mean = Math.Round(score.Mean, 6),
        }, Json));
        return 0;
    }
}

using SelfPlay.Models.Checkpoints;

namespace SelfPlay.Models.Tokenization;

/// <summary>The tokenizer of a checkpoint folder: the samples' character tokenizer, or a Hugging Face tokenizer.json.</summary>
public static class TokenizerFiles
{
    /// <summary>The folder's tokenizer, or null when it has none.</summary>
    public static ITokenizer? Load(string directory)
    {
        if (File.Exists(Path.Combine(directory, CharTokenizer.FileName))) return CharTokenizer.Load(directory);
        if (File.Exists(Path.Combine(directory, HfTokenizer.FileName))) return HfTokenizer.Load(directory, Checkpoint.ReadConfig(directory));
        return null;
    }
}

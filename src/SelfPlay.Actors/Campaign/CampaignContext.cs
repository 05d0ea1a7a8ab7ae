using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;

namespace SelfPlay.Actors.Campaign;

/// <summary>What every actor of a campaign derives from: the configuration, the environment with its split, the run folder.</summary>
public sealed record CampaignContext(CampaignConfig Config, EnvironmentSetup Setup, string RunDir)
{
    public string CheckpointDir(int version) => Path.Combine(RunDir, "checkpoints", $"v{version}");

    /// <summary>The folder of the critic trained in iteration <paramref name="version"/> (search.critic = value | prm).</summary>
    public string CriticDir(int version) => Path.Combine(RunDir, "checkpoints", $"critic-v{version}");

    /// <summary>The held-out episodes of policy vN's greedy evaluation, one JSON object per line.</summary>
    public string EvaluationFile(int version) => Path.Combine(RunDir, "eval", $"v{version}.jsonl");

    public LlamaConfig ModelConfig(CharTokenizer tokenizer) => new(
        VocabSize: tokenizer.VocabSize,
        HiddenSize: Config.Model.HiddenSize,
        IntermediateSize: Config.Model.IntermediateSize,
        NumHiddenLayers: Config.Model.Layers,
        NumAttentionHeads: Config.Model.Heads,
        NumKeyValueHeads: Config.Model.KvHeads,
        MaxPositionEmbeddings: Config.Model.MaxPositions,
        RopeTheta: Config.Model.RopeTheta);

    public TimeSpan AskTimeout => TimeSpan.FromSeconds(Config.Actors.AskTimeoutSeconds);
}

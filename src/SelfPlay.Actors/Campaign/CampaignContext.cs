using SelfPlay.Actors.Configuration;
using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using TorchSharp;

namespace SelfPlay.Actors.Campaign;

/// <summary>What every actor of a campaign derives from: the configuration, the environment with its split, the run folder.</summary>
public sealed record CampaignContext(CampaignConfig Config, EnvironmentSetup Setup, string RunDir)
{
    public string CheckpointDir(int version) => Path.Combine(RunDir, "checkpoints", $"v{version}");

    /// <summary>The folder of the critic trained in iteration <paramref name="version"/> (search.critic = value | prm).</summary>
    public string CriticDir(int version) => Path.Combine(RunDir, "checkpoints", $"critic-v{version}");

    /// <summary>The held-out episodes of policy vN's greedy evaluation, one JSON object per line.</summary>
    public string EvaluationFile(int version) => Path.Combine(RunDir, "eval", $"v{version}.jsonl");

    /// <summary>The folder of policy.checkpoint, or null for the character model.</summary>
    public string? PolicyCheckpoint => Config.PolicySource.Checkpoint.Length > 0 ? Config.PolicySource.Checkpoint : null;

    /// <summary>The one tokenizer of the campaign (warm-up, inference, scoring, learner, critic, evaluation): the policy
    /// checkpoint's, or the character model's. Loaded when the context is made, so a folder without a tokenizer or with
    /// a vocabulary larger than its embedding is a one-line error before anything starts.</summary>
    public ITokenizer Tokenizer { get; } = CreateTokenizer(Config);

    static ITokenizer CreateTokenizer(CampaignConfig config)
    {
        if (config.PolicySource.Checkpoint is not { Length: > 0 } dir) return new CharTokenizer();
        try { return Checkpoint.LoadTokenizer(dir, out _); }
        catch (InvalidDataException e) { throw new ConfigException($"selfplay.policy.checkpoint: {e.Message}"); }
    }

    /// <summary>The environment with its split; with a chat template (policy.chat-template), the environment's prompt is
    /// rendered as the user turn, the policy's steps form the assistant turn and what the environment writes after a step
    /// is a tool turn (policy.environment-turn); the environment still sees its own text.</summary>
    public EnvironmentSetup Setup { get; } = WithChatTemplate(Setup, Config);

    /// <summary>The chat format the campaign renders its prompts in (policy.chat-template over policy.checkpoint's
    /// tokenizer), or null for none.</summary>
    public static ChatTemplate? ChatFormatOf(CampaignConfig config)
    {
        if (config.PolicySource.Checkpoint is not { Length: > 0 } dir) return null;
        try
        {
            var tokenizer = Checkpoint.LoadTokenizer(dir, out _);
            return ChatTemplate.ForPolicy(config.PolicySource.ChatTemplate, (tokenizer as HfTokenizer)?.ChatTemplateSource, tokenizer);
        }
        catch (InvalidDataException e) { throw new ConfigException($"selfplay.policy.chat-template: {e.Message}"); }
    }

    static EnvironmentSetup WithChatTemplate(EnvironmentSetup setup, CampaignConfig config) =>
        setup.Environment is PromptFormattedEnvironment || ChatFormatOf(config) is not { } template ? setup
            : setup with { Environment = config.PolicySource.EnvironmentTurn == "tool"
                ? new PromptFormattedEnvironment(setup.Environment, template.RenderPrompt, template.EnvironmentTurn.Open, template.EnvironmentTurn.Close)
                : new PromptFormattedEnvironment(setup.Environment, template.RenderPrompt) };

    /// <summary>The policy's architecture: policy.checkpoint's config.json, or the model section's sizes with the
    /// character vocabulary.</summary>
    public LlamaConfig ModelConfig() => PolicyCheckpoint is { } dir ? Checkpoint.ReadConfig(dir) : new(
        VocabSize: Tokenizer.VocabSize,
        HiddenSize: Config.Model.HiddenSize,
        IntermediateSize: Config.Model.IntermediateSize,
        NumHiddenLayers: Config.Model.Layers,
        NumAttentionHeads: Config.Model.Heads,
        NumKeyValueHeads: Config.Model.KvHeads,
        MaxPositionEmbeddings: Config.Model.MaxPositions,
        RopeTheta: Config.Model.RopeTheta);

    /// <summary>The policy a campaign starts from: policy.checkpoint's weights, or a seeded untrained character model.</summary>
    public LlamaForCausalLM InitialPolicy()
    {
        if (PolicyCheckpoint is { } dir) return Checkpoint.LoadModel(dir, Config.Model.Device);
        var model = new LlamaForCausalLM(ModelConfig(), initSeed: Config.Seed);
        model.to(Config.Model.Device);
        return model;
    }

    public TimeSpan AskTimeout => TimeSpan.FromSeconds(Config.Actors.AskTimeoutSeconds);
}

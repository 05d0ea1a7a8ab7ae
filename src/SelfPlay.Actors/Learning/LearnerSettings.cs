using SelfPlay.Core.Config;
using SelfPlay.Core.Preferences;
using SelfPlay.Models.Training;

namespace SelfPlay.Actors.Learning;

/// <summary>The preferences.* and learner.* settings as the extractors, losses and trainer take them, and their validation.</summary>
public static class LearnerSettings
{
    public static ExtractorOptions Extractor(PreferenceConfig p) => new(
        MinQGap: p.MinQGap, Rejected: p.Rejected, MaxPerTree: p.MaxPerTree, Margin: p.Margin, QThreshold: p.QThreshold,
        CriticWeight: p.CriticWeight, QCenter: p.QCenter, MinListSize: p.MinListSize, AdvantageStd: p.AdvantageStd,
        TreePoWeighting: p.TreePoWeighting, Critic: p.Critic, VisitTemperature: p.VisitTemperature);

    public static LossOptions Loss(LearnerConfig l) => new(
        Name: l.Loss, Beta: l.Beta, LabelSmoothing: l.LabelSmoothing, Alpha: l.Alpha, Gamma: l.Gamma, SftWeight: l.SftWeight,
        StepWeights: StepWeights(l.StepWeights), ClipLow: l.ClipLow, ClipHigh: l.ClipHigh,
        DesirableWeight: l.DesirableWeight, UndesirableWeight: l.UndesirableWeight);

    public static TrainerOptions Trainer(LearnerConfig l, string? checkpointDir) => new(
        LearningRate: l.LearningRate, WeightDecay: l.WeightDecay, MaxGradNorm: l.MaxGradNorm, BatchSize: l.BatchSize, WarmupShare: l.WarmupShare,
        GradientAccumulation: l.GradientAccumulation, CheckpointEvery: l.CheckpointEvery,
        CheckpointDir: l.CheckpointEvery > 0 ? checkpointDir : null, ComputeDType: ComputeDType(l), Patience: l.Patience, Dropout: l.Dropout);


    /// <summary>What forward and backward run in; the trained weights stay float32 (bfloat16 = mixed precision).</summary>
    public static TorchSharp.torch.ScalarType ComputeDType(LearnerConfig l) => Models.Checkpoints.Checkpoint.ScalarTypeOf(l.DType);

    /// <summary>learner.lora.* as adapter settings; null for full fine-tuning (rank 0).</summary>
    public static Models.Llama.LoraSettings? Lora(LearnerConfig l) => l.LoraRank == 0 ? null
        : new(l.LoraRank, l.LoraAlpha, l.LoraDropout, Models.Llama.LoraSettings.ParseTargets(l.LoraTargetModules, "selfplay.learner.lora.target-modules"));

    static string? TryTargets(string list)
    {
        try { Models.Llama.LoraSettings.ParseTargets(list, "selfplay.learner.lora.target-modules"); return null; }
        catch (ArgumentException e) { return e.Message; }
    }

    public static StepWeighting StepWeights(string name) => name switch
    {
        "dissimilar" => StepWeighting.Dissimilar,
        "similar" => StepWeighting.Similar,
        "none" => StepWeighting.None,
        _ => throw new ArgumentException($"step-weights must be dissimilar, similar or none, got '{name}'"),
    };

    public static void Validate(PreferenceConfig p, LearnerConfig l, Action<bool, string> check)
    {
        var extractor = Extractors.All.FirstOrDefault(e => e.Name == p.Extractor);
        check(extractor is not null, $"selfplay.preferences.extractor '{p.Extractor}' is not implemented (implemented: {string.Join(", ", Extractors.All.Select(e => e.Name))})");
        var loss = Losses.Find(l.Loss);
        check(loss is not null, $"selfplay.learner.loss '{l.Loss}' is not implemented (implemented: {string.Join(", ", Losses.All.Select(x => x.Name))})");
        check(extractor is null || loss is null || loss.Accepts.Contains(extractor.Kind),
            $"selfplay.learner.loss '{l.Loss}' cannot train on the {extractor?.Kind.ToString().ToLowerInvariant()} examples of preferences.extractor '{p.Extractor}'");
        check(p.Rejected is "worst" or "random", $"selfplay.preferences.rejected must be worst or random, got '{p.Rejected}'");
        check(p.MaxPerTree >= 0 && p.Margin >= 0 && p.QThreshold >= 0 && p.MinQGap >= 0, "selfplay.preferences: max-per-tree, margin, q-threshold and min-q-gap must be non-negative");
        check(p.CriticWeight is >= 0 and <= 1, $"selfplay.preferences.critic-weight must be in [0, 1], got {p.CriticWeight}");
        check(p.CriticWeight >= 1 || p.Critic.Length > 0,
            $"selfplay.preferences.critic-weight = {p.CriticWeight} needs preferences.critic = the critic whose score it mixes in (search.critic's name)");
        check(p.Extractor != "tree-plv" || p.Margin > 0, "selfplay.preferences.margin must be positive for tree-plv (0 pairs a step with itself)");
        check(loss?.OnlyExtractor is not { } only || p.Extractor == only.Extractor,
            $"selfplay.learner.loss = {l.Loss} {loss?.OnlyExtractor?.Why}, got '{p.Extractor}'");
        check(p.VisitTemperature > 0, $"selfplay.preferences.visit-temperature must be positive, got {p.VisitTemperature}");
        check(p.MinListSize >= 2, $"selfplay.preferences.min-list-size must be at least 2, got {p.MinListSize}");
        check(p.TreePoWeighting is "average" or "group-size", $"selfplay.preferences.treepo-weighting must be average or group-size, got '{p.TreePoWeighting}'");
        check(l.LabelSmoothing is >= 0 and < 0.5, $"selfplay.learner.label-smoothing must be in [0, 0.5), got {l.LabelSmoothing}");
        check(l.DesirableWeight > 0 && l.UndesirableWeight > 0, $"selfplay.learner.desirable-weight and undesirable-weight must be positive, got {l.DesirableWeight}, {l.UndesirableWeight}");
        check(l.Alpha >= 0 && l.Gamma >= 0 && l.ClipLow is >= 0 and < 1 && l.ClipHigh >= 0, "selfplay.learner: alpha, gamma and clip-high must be non-negative, clip-low in [0, 1)");
        check(l.StepWeights is "dissimilar" or "similar" or "none", $"selfplay.learner.step-weights must be dissimilar, similar or none, got '{l.StepWeights}'");
        check(l.GradientAccumulation >= 1 && l.CheckpointEvery >= 0, "selfplay.learner: gradient-accumulation must be at least 1, checkpoint-every non-negative");
        check(l.HeldOutShare is >= 0 and < 1 && l.Patience >= 1, $"selfplay.learner: held-out-share must be in [0, 1) and patience at least 1, got {l.HeldOutShare}, {l.Patience}");
        check(l.Dropout is >= 0 and < 1, $"selfplay.learner.dropout must be in [0, 1), got {l.Dropout}");
        check(l.SolutionsPerTask >= 0, $"selfplay.learner.solutions-per-task must be non-negative (0 = the newest solved tree's solutions), got {l.SolutionsPerTask}");
        check(l.WeightDecay >= 0 && l.MaxGradNorm > 0 && l.WarmupShare is >= 0 and <= 1,
            "selfplay.learner: weight-decay must be non-negative, max-grad-norm positive, warmup-share in [0, 1]");
        check(PreferenceFormats.Names.Contains(l.ImportFormat), $"selfplay.learner.import-format must be one of {string.Join(", ", PreferenceFormats.Names)}, got '{l.ImportFormat}'");
        check(l.DType is "float32" or "bfloat16", $"selfplay.learner.dtype must be float32 or bfloat16, got '{l.DType}'");
        check(l.LoraRank >= 0 && l.LoraAlpha > 0 && l.LoraDropout is >= 0 and < 1,
            $"selfplay.learner.lora: rank must be 0 (full fine-tuning) or positive, alpha positive, dropout in [0, 1), got {l.LoraRank}, {l.LoraAlpha}, {l.LoraDropout}");
        check(l.LoraRank == 0 || TryTargets(l.LoraTargetModules) is null, TryTargets(l.LoraTargetModules) ?? "");
        check(l.ImportErrors is "skip" or "reject", $"selfplay.learner.import-errors must be skip or reject, got '{l.ImportErrors}'");
        check(l.Import.Length == 0 || File.Exists(l.Import), $"selfplay.learner.import: file not found: {l.Import}");
        check(l.Import.Length == 0 || loss is null || loss.Accepts.Contains(ExampleKind.Pair), $"selfplay.learner.import holds pairs, which {l.Loss} cannot train on");
    }
}

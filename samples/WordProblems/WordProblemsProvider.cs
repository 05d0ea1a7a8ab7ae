using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;

namespace SelfPlay.Samples.WordProblems;

/// <summary>environment.type = word-problems: environment.held-out and environment.train-tasks distinct problems, seeded by
/// split-seed; step-mode "operation" (the environment computes each calculation) or "whole-step" (the policy does).</summary>
public sealed class WordProblemsProvider : IEnvironmentProvider
{
    public string Name => "word-problems";

    public EnvironmentSetup Create(EnvironmentConfig config)
    {
        config.CheckKnown(Name);
        var calculator = config.StepMode switch
        {
            "operation" => true,
            "whole-step" => false,
            _ => throw new ArgumentException($"word-problems step-mode must be operation or whole-step, got '{config.StepMode}'"),
        };
        var heldOut = WordProblemTemplates.Generate(config.HeldOut, config.SplitSeed);
        var train = WordProblemTemplates.Generate(config.TrainTasks, config.SplitSeed + 1, heldOut.ToHashSet());
        return new EnvironmentSetup(new WordProblemsEnvironment(config.WrongAnswerReward, calculator),
            train.Select((t, i) => new EnvTask($"wp-{i}", t)).ToList(),
            heldOut.Select((t, i) => new EnvTask($"wp-h{i}", t)).ToList());
    }
}

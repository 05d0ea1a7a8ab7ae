using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;

namespace SelfPlay.Samples.Instructions;

/// <summary>
/// environment.type = instructions: distinct instructions (topic, a length bound and environment.settings.constraints
/// − 1 or constraints more, 1..4, default 2), seeded by split-seed.
/// environment.settings.judge = programmatic (default) or llm: the llm settings' chat model also judges whether the
/// response is about the topic.
/// </summary>
public sealed class InstructionsProvider : IEnvironmentProvider
{
    public string Name => "instructions";

    public EnvironmentSetup Create(EnvironmentConfig config)
    {
        config.CheckKnown(Name, "judge", "constraints");
        var extra = config.Setting("constraints", 2, 1, 4);
        var judge = config.Setting("judge", "programmatic") switch
        {
            "programmatic" => null,
            "llm" => LlmTopicJudge.FromConfig(config),
            var other => throw new ArgumentException($"instructions: environment.settings.judge must be programmatic or llm, got '{other}'"),
        };
        var heldOut = InstructionTasks.Generate(config.HeldOut, config.SplitSeed, extra: extra);
        var train = InstructionTasks.Generate(config.TrainTasks, config.SplitSeed + 1, heldOut.ToHashSet(), extra);
        return new EnvironmentSetup(new InstructionsEnvironment(config.WrongAnswerReward, judge),
            train.Select((t, i) => new EnvTask($"if-{i}", t)).ToList(),
            heldOut.Select((t, i) => new EnvTask($"if-h{i}", t)).ToList());
    }
}

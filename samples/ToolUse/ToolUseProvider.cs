using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;

namespace SelfPlay.Samples.ToolUse;

/// <summary>environment.type = tool-use: distinct questions over the shipped knowledge base, seeded by split-seed.</summary>
public sealed class ToolUseProvider : IEnvironmentProvider
{
    public string Name => "tool-use";

    public EnvironmentSetup Create(EnvironmentConfig config)
    {
        config.CheckKnown(Name);
        var knowledge = KnowledgeBase.Shipped;
        var heldOut = ToolTasks.Generate(config.HeldOut, config.SplitSeed, knowledge);
        var train = ToolTasks.Generate(config.TrainTasks, config.SplitSeed + 1, knowledge, heldOut.ToHashSet());
        return new EnvironmentSetup(new ToolUseEnvironment(ToolRegistry.Default, knowledge, config.WrongAnswerReward),
            train.Select((t, i) => new EnvTask($"tool-{i}", t)).ToList(),
            heldOut.Select((t, i) => new EnvTask($"tool-h{i}", t)).ToList());
    }
}

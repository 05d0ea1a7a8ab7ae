using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;

namespace SelfPlay.Samples.Countdown;

/// <summary>
/// environment.type = countdown: environment.held-out and environment.train-tasks generated tasks (distinct, seeded
/// by environment.split-seed) with environment.settings.min-numbers..max-numbers numbers (default 4..6).
/// </summary>
public sealed class CountdownProvider : IEnvironmentProvider
{
    public string Name => "countdown";

    public EnvironmentSetup Create(EnvironmentConfig config)
    {
        config.CheckKnown(Name, "min-numbers", "max-numbers");
        var min = config.Setting("min-numbers", 4, 3, CountdownEnvironment.MaxNumbers);
        var max = config.Setting("max-numbers", 6, min, CountdownEnvironment.MaxNumbers);
        var heldOut = CountdownTasks.Generate(config.HeldOut, config.SplitSeed, min, max);
        var train = CountdownTasks.Generate(config.TrainTasks, config.SplitSeed + 1, min, max, heldOut.ToHashSet());
        return new EnvironmentSetup(new CountdownEnvironment(config.WrongAnswerReward),
            train.Select((t, i) => new EnvTask($"cd-{i}", t)).ToList(),
            heldOut.Select((t, i) => new EnvTask($"cd-h{i}", t)).ToList());
    }
}

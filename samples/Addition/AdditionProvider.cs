using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;

namespace SelfPlay.Samples.Addition;

/// <summary>Makes the tasks: "a+b" with a, b in 0..99, the first environment.held-out of them held out.</summary>
public sealed class AdditionProvider : IEnvironmentProvider
{
    public string Name => "addition";

    public EnvironmentSetup Create(EnvironmentConfig config)
    {
        var random = new Random(config.SplitSeed);
        var tasks = Enumerable.Range(0, config.HeldOut + config.TrainTasks)
            .Select(i => new EnvTask($"add-{i}", $"{random.Next(100)}+{random.Next(100)}"))
            .ToList();
        return new EnvironmentSetup(new AdditionEnvironment(), Train: tasks[config.HeldOut..], HeldOut: tasks[..config.HeldOut]);
    }
}

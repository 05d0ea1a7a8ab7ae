using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;

namespace SelfPlay.Samples.Game24;

/// <summary>
/// environment.type = game24: the 1,362 solvable puzzles, split with environment.split-seed into
/// environment.held-out held-out puzzles and the rest for training (at most environment.train-tasks of them, the first
/// of the split's order: a quick campaign can train and search on a few puzzles). Task ids are the numbers joined by '-'.
/// </summary>
public sealed class Game24Provider : IEnvironmentProvider
{
    public string Name => "game24";

    public static EnvTask Task(int[] puzzle) => new(string.Join('-', puzzle), Game24Puzzles.Format(puzzle));

    public static Game24StepMode Mode(string stepMode) => stepMode switch
    {
        "operation" => Game24StepMode.Operation,
        "whole-step" => Game24StepMode.WholeStep,
        _ => throw new ArgumentException($"game24 step-mode must be operation or whole-step, got '{stepMode}'"),
    };

    public EnvironmentSetup Create(EnvironmentConfig config)
    {
        if (config.HeldOut is < 1 or > 1361) throw new ArgumentException($"game24: environment.held-out must be in 1..1361, got {config.HeldOut}");
        var (train, heldOut) = Game24Puzzles.Split(config.SplitSeed, config.HeldOut);
        return new EnvironmentSetup(new Game24Environment(Mode(config.StepMode), config.WrongAnswerReward), train.Take(config.TrainTasks).Select(Task).ToList(), heldOut.Select(Task).ToList());
    }
}

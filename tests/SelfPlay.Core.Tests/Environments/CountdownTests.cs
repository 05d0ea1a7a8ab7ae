using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Samples.Countdown;

namespace SelfPlay.Core.Tests.Environments;

public class CountdownTests
{
    static readonly CountdownEnvironment Env = new(wrongAnswerReward: 0.2);
    static readonly EnvTask Task = new("t", "175 3 7 25 50");

    [Fact]
    public void Operations_are_executed_by_the_environment_and_the_target_ends_the_episode()
    {
        var state = Env.InitialState(Task);
        Assert.Equal("Make 175 from 3 7 25 50\n", state);
        var steps = EpisodeRunner.Play(Env, Task, ["50 / 25", "3 + 2", "5 * 7", "35 * 5"]);
        Assert.Equal("50 / 25 = 2 (left: 2 3 7)\n", steps[0].Outcome.Appended);
        Assert.Equal("3 + 2 = 5 (left: 5 7)\n", steps[1].Outcome.Appended);
        Assert.Equal(3, steps.Count); // one number left after the third operation: the episode is over
        Assert.Equal((true, 0.2, "result is 35, not 175"), (steps[2].Outcome.IsTerminal, steps[2].Outcome.Reward, steps[2].Outcome.Reason));
    }

    [Fact]
    public void A_solution_earns_1_and_verifies_and_a_wrong_finish_earns_the_wrong_answer_reward()
    {
        var solved = EpisodeRunner.Play(Env, Task, ["25 * 7"]);
        Assert.Equal("25 * 7 = 175 (left: 3 50 175)\nAnswer: 25 * 7 = 175\n", solved[0].Outcome.Appended);
        Assert.Equal((true, 1.0), (solved[0].Outcome.IsTerminal, solved[0].Outcome.Reward));
        Assert.Equal((1.0, "solved"), Env.Verify(Task, "Make 175 from 3 7 25 50\n" + solved[0].Outcome.Appended));

        var wrong = EpisodeRunner.Play(Env, Task, ["3 + 7", "10 + 25", "35 + 50"]);
        Assert.Equal((0.2, "result is 85, not 175"), (wrong[^1].Outcome.Reward, wrong[^1].Outcome.Reason));
        var final = wrong[^1].StateBefore + wrong[^1].Outcome.Appended;
        Assert.Equal(0.2, Env.Verify(Task, final).Reward);
        Assert.EndsWith("Answer: ((3 + 7) + 25) + 50 = 85\n", final);
        // A forged answer line or a changed step line does not verify.
        Assert.Equal(0, Env.Verify(Task, final.Replace("= 85\n", "= 175\n")).Reward);
        Assert.Equal(0, Env.Verify(Task, final.Replace("10 + 25 = 35", "10 + 25 = 36")).Reward);
    }

    [Fact]
    public void Rule_breaking_steps_earn_0_with_a_reason()
    {
        var state = Env.InitialState(Task);
        Assert.Equal("7 is used twice but only one is left", Env.Step(Task, state, "7 * 7").Reason);
        Assert.Equal("3 - 7 is not a positive number", Env.Step(Task, state, "3 - 7").Reason);
        Assert.Equal("7 / 3 is not a whole number", Env.Step(Task, state, "7 / 3").Reason);
        Assert.Equal("4 is not available (left: 3 7 25 50)", Env.Step(Task, state, "4 + 3").Reason);
        Hostile.AssertRejected(Env, Task, Hostile.Actions.Concat(["7 * 7", "3 - 7", "7 / 0", "1 +", "3 ^ 7", "25 * 7 = 175", "-3 + 7"]));
        Hostile.AssertVerifyRejects(Env, Task);
        Assert.Equal("the episode is already over", Env.Step(Task, state + "25 * 7 = 175 (left: 3 50 175)\nAnswer: 25 * 7 = 175\n", "3 + 50").Reason);
    }

    [Fact]
    public void Legal_actions_are_exactly_the_operations_that_keep_the_rules()
    {
        var task = new EnvTask("s", "24 4 6");
        var legal = Env.LegalActions(task, "Make 24 from 4 6\n")!;
        Assert.Equal(["4 * 6", "4 + 6", "6 - 4"], legal.Order(StringComparer.Ordinal));
        Assert.All(legal, a => Assert.True(Env.Step(task, "Make 24 from 4 6\n", a).Reward > 0));
        Assert.Empty(Env.LegalActions(task, "garbage")!);
    }

    [Fact]
    public void Generated_tasks_have_4_to_6_numbers_a_reachable_target_and_a_reference_solution()
    {
        var setup = new CountdownProvider().Create(new EnvironmentConfig("countdown", "operation", 30, 7, 5, 0.2, TrainTasks: 60));
        Assert.Equal((30, 60), (setup.HeldOut.Count, setup.Train.Count));
        Assert.Empty(setup.HeldOut.Select(t => t.Input).Intersect(setup.Train.Select(t => t.Input)));
        Assert.All(setup.Train.Concat(setup.HeldOut), t =>
        {
            var (target, numbers) = CountdownTasks.Parse(t.Input);
            Assert.InRange(numbers.Length, 4, 6);
            Assert.InRange(target, 10, 999);
        });
        Hostile.AssertReferenceSolutionsSolve(setup.Environment, setup.Train.Concat(setup.HeldOut));
        var again = new CountdownProvider().Create(new EnvironmentConfig("countdown", "operation", 30, 7, 5, 0.2, TrainTasks: 60));
        Assert.Equal(setup.Train.Select(t => t.Input), again.Train.Select(t => t.Input)); // seeded
        var six = new EnvironmentConfig("countdown", "operation", 5, 7, 5, TrainTasks: 5, Settings: new Dictionary<string, string> { ["min-numbers"] = "6" });
        Assert.All(new CountdownProvider().Create(six).Train, t => Assert.Equal(6, CountdownTasks.Parse(t.Input).Numbers.Length));
    }
}

using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Samples.WordProblems;

namespace SelfPlay.Core.Tests.Environments;

public class WordProblemsTests
{
    static readonly WordProblemsEnvironment Env = new(wrongAnswerReward: 0.2);
    static readonly EnvTask Task = new("t", "0 0 1 12 3 5"); // template 0: Ann has 12 pens, buys 3 packs of 5

    [Fact]
    public void A_template_gives_the_question_the_steps_and_the_exact_answer()
    {
        Assert.Equal("Q: Ann has 12 pens. Ann buys 3 packs of 5 pens. How many pens does Ann have now?\n", Env.InitialState(Task));
        Assert.Equal(["3 * 5 = 15", "12 + 15 = 27", "The answer is 27"], Env.ReferenceActions(Task, new Random(1)));
    }

    [Fact]
    public void Calculations_are_checked_and_the_answer_is_extracted_from_the_answer_line()
    {
        var state = Env.InitialState(Task);
        Assert.Equal(StepOutcome.Continue("3 * 5 = 15\n"), Env.Step(Task, state, "3 * 5 = 15"));
        Assert.Equal("3 * 5 is 15, not 16", Env.Step(Task, state, "3 * 5 = 16").Reason);
        Assert.Equal("7 / 2 is not a whole number", Env.Step(Task, state, "7 / 2 = 3").Reason);
        Assert.Equal((1.0, "solved"), (Env.Step(Task, state, "The answer is 27").Reward, Env.Step(Task, state, "The answer is 27.").Reason));
        Assert.Equal((0.2, "answer 26 is wrong"), (Env.Step(Task, state, "The answer is 26").Reward, Env.Step(Task, state, "The answer is 26").Reason));
        Assert.Equal(0, Env.Step(Task, state, "The answer is twenty-seven").Reward);

        var final = state + "3 * 5 = 15\n12 + 15 = 27\nThe answer is 27\n";
        Assert.Equal((1.0, "solved"), Env.Verify(Task, final));
        Assert.Equal(0, Env.Verify(Task, final.Replace("12 + 15 = 27", "12 + 15 = 28")).Reward); // a forged line
        Assert.Equal(0, Env.Verify(new EnvTask("t", "0 0 1 12 3 6"), final).Reward);              // another task
    }

    [Fact]
    public void Step_scores_reward_lines_that_compute_a_quantity_of_the_solution()
    {
        var state = Env.InitialState(Task);
        Assert.Equal(1, Env.ScoreStep(Task, state, "3 * 5 = 15", Env.Step(Task, state, "3 * 5 = 15")));
        Assert.Equal(0, Env.ScoreStep(Task, state, "3 + 5 = 8", Env.Step(Task, state, "3 + 5 = 8")));
    }

    [Fact]
    public void Hostile_output_earns_0_with_a_reason()
    {
        Hostile.AssertRejected(Env, Task, Hostile.Actions.Concat(["3 * 5 = 16", "3 * 5", "The answer is", "The answer is 999999999999999999999",
            "1 / 0 = 0", "99999999999 * 99999999999 = 1", "= 27", "27"]));
        Hostile.AssertVerifyRejects(Env, Task);
        Assert.Throws<FormatException>(() => WordProblemTemplates.Parse("99 0 0 1"));
    }

    static readonly WordProblemsEnvironment Calculator = new(wrongAnswerReward: 0.2, calculator: true);

    /// <summary>Operation mode: the policy writes "a op b" and "The answer"; the environment writes each result and the
    /// answer (the last result), and only the policy's part is trained on.</summary>
    [Fact]
    public void In_operation_mode_the_environment_computes_and_the_answer_is_the_last_result()
    {
        Assert.Equal(" =", Calculator.StepStop);
        Assert.Equal(["3 * 5", "12 + 15", "The answer"], Calculator.ReferenceActions(Task, new Random(1)));
        var steps = EpisodeRunner.Play(Calculator, Task, ["3 * 5", "12 + 15", "The answer"]);
        Assert.Equal(["3 * 5 = 15\n", "12 + 15 = 27\n", "The answer = 27\n"], steps.Select(s => s.Outcome.Appended));
        Assert.Equal((1.0, "solved"), (steps[^1].Outcome.Reward, steps[^1].Outcome.Reason));
        Assert.Equal("12 + 15 =".Length, steps[1].Outcome.PolicyLength("12 + 15", Calculator.StepStop)); // " 27\n" is the environment's
        var final = steps[^1].StateBefore + steps[^1].Outcome.Appended;
        Assert.Equal((1.0, "solved"), Calculator.Verify(Task, final));
        Assert.Equal(1, Calculator.ScoreStep(Task, steps[0].StateBefore, "3 * 5", steps[0].Outcome));
        Assert.Equal(0, Calculator.ScoreStep(Task, steps[0].StateBefore, "3 + 5", Calculator.Step(Task, steps[0].StateBefore, "3 + 5")));

        var wrong = EpisodeRunner.Play(Calculator, Task, ["3 * 5", "12 + 16", "The answer"]);
        Assert.Equal((0.2, "answer 28 is wrong"), (wrong[^1].Outcome.Reward, wrong[^1].Outcome.Reason));
        Assert.Equal(0, Calculator.Verify(Task, final.Replace("The answer = 27", "The answer = 15")).Reward); // not the last result
        Assert.Equal(0, Calculator.Verify(Task, final.Replace("12 + 15 = 27", "12 + 15 = 28")).Reward);       // a forged line
        Assert.Equal("7 / 2 is not a whole number", Calculator.Step(Task, Calculator.InitialState(Task), "7 / 2").Reason);
        Hostile.AssertRejected(Calculator, Task, Hostile.Actions.Concat(["The answer", "The answer is 27", "3 * 5 = 15", "3 *", "1 / 0",
            "99999999999 * 99999999999", "= 27", "27"]));
        Hostile.AssertVerifyRejects(Calculator, Task);
    }

    [Fact]
    public void Generated_problems_are_distinct_seeded_and_solved_by_their_reference()
    {
        var setup = new WordProblemsProvider().Create(new EnvironmentConfig("word-problems", "operation", 40, 3, 4, TrainTasks: 200));
        Assert.True(((WordProblemsEnvironment)setup.Environment).Calculator);
        Assert.Empty(setup.HeldOut.Select(t => t.Input).Intersect(setup.Train.Select(t => t.Input)));
        Assert.Equal(WordProblemTemplates.Count, setup.Train.Select(t => t.Input.Split(' ')[0]).Distinct().Count());
        Hostile.AssertReferenceSolutionsSolve(setup.Environment, setup.Train.Concat(setup.HeldOut));
        Assert.All(setup.Train, t => Assert.True(setup.Environment.InitialState(t).Length < 110, setup.Environment.InitialState(t)));
        var whole = new WordProblemsProvider().Create(new EnvironmentConfig("word-problems", "whole-step", 40, 3, 4, TrainTasks: 200));
        Assert.False(((WordProblemsEnvironment)whole.Environment).Calculator);
        Hostile.AssertReferenceSolutionsSolve(whole.Environment, whole.Train);
        Assert.Contains("step-mode", Assert.Throws<ArgumentException>(() =>
            new WordProblemsProvider().Create(new EnvironmentConfig("word-problems", "calculator", 40, 3, 4))).Message);
    }
}

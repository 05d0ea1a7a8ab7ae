using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Samples.Instructions;

namespace SelfPlay.Core.Tests.Environments;

public class InstructionsTests
{
    static readonly InstructionsEnvironment Env = new(wrongAnswerReward: 0.2);

    static (double Reward, string Reason) Answer(string input, string response)
    {
        var task = new EnvTask("t", input);
        var outcome = Env.Step(task, Env.InitialState(task), response);
        Assert.True(outcome.IsTerminal);
        Assert.Equal((outcome.Reward, outcome.Reason), Env.Verify(task, Env.InitialState(task) + outcome.Appended));
        return (outcome.Reward, outcome.Reason);
    }

    [Fact]
    public void The_instruction_states_its_constraints()
    {
        var task = new EnvTask("t", "cats|max:6|has:sun|no:nap|lower");
        Assert.Equal("Write about cats: at most 6 words, use sun, avoid nap, lowercase.\n", Env.InitialState(task));
    }

    [Theory]
    [InlineData("cats|max:4|lower", "cats purr in sun", 1.0, "all constraints kept")]
    [InlineData("cats|max:4|lower", "cats purr in the sun", 0.1, "1 of 2 broken: 5 words, more than 4")]
    [InlineData("cats|min:3|upper", "CATS PURR", 0.1, "1 of 2 broken: 2 words, fewer than 3")]
    [InlineData("cats|min:2|has:sun|no:nap", "cats nap", 0.2 / 3, "2 of 3 broken: does not use 'sun'")]
    [InlineData("cats|min:2|lower", "Cats purr", 0.1, "1 of 2 broken: not all lowercase")]
    [InlineData("cats|min:2|end:!", "cats purr!", 1.0, "all constraints kept")]
    [InlineData("cats|min:2|quote", "\"cats purr\"", 1.0, "all constraints kept")]
    [InlineData("cats|min:2|quote", "cats purr", 0.1, "1 of 2 broken: not wrapped in double quotes")]
    [InlineData("cats|max:3|json", "{\"text\": \"cats purr\"}", 1.0, "all constraints kept")]
    [InlineData("cats|max:3|json", "{\"text\": \"cats purr so very loud\"}", 0.1, "1 of 2 broken: 5 words, more than 3")]
    [InlineData("cats|max:3|json", "{\"text\": \"cats\"", 0, "not a JSON object with a \"text\" string")]
    [InlineData("cats|max:3|json", "{\"words\": \"cats\"}", 0, "not a JSON object with a \"text\" string")]
    [InlineData("cats|max:3|json", "[\"cats\"]", 0, "not a JSON object with a \"text\" string")]
    [InlineData("cats|max:3|lower", "", 0, "empty response")]
    public void The_programmatic_judge_checks_every_constraint(string input, string response, double reward, string reason)
    {
        var (r, why) = Answer(input, response);
        Assert.Equal(reward, r, 6);
        Assert.Equal(reason, why);
    }

    [Fact]
    public void Hostile_responses_earn_0_with_a_reason()
    {
        // JSON is asked for, so nothing that is not a JSON object with a text can earn anything.
        var task = new EnvTask("t", "cats|min:2|has:sun|json");
        Hostile.AssertRejected(Env, task, Hostile.Actions.Concat(["{", "{\"text\": 1}", "{\"text\": \"a\"} trailing", "null", "\"cats sun\"",
            new string('{', 100) + new string('}', 100), "{\"text\":" + new string('[', 5000)]));
        Hostile.AssertVerifyRejects(Env, task);
        Assert.Equal("response is too long (300 characters)", Env.Step(task, Env.InitialState(task), new string('a', 300)).Reason);
    }

    [Fact]
    public void An_llm_topic_judge_adds_a_check_the_program_cannot_make()
    {
        var offTopic = new InstructionsEnvironment(0.2, new FixedTopicJudge(false));
        var task = new EnvTask("t", "cats|max:4|lower");
        var outcome = offTopic.Step(task, offTopic.InitialState(task), "dogs bark loud");
        Assert.Equal((0.2 * 2 / 3, "off topic: no"), (outcome.Reward, outcome.Reason));
        Assert.Equal(1, new InstructionsEnvironment(0.2, new FixedTopicJudge(true)).Step(task, "", "cats purr").Reward);
        Assert.Contains("needs llm.endpoint", Assert.Throws<ArgumentException>(() => new InstructionsProvider().Create(
            new EnvironmentConfig("instructions", "operation", 5, 1, 1, WrongAnswerReward: 0, TrainTasks: 5, Settings: new Dictionary<string, string> { ["judge"] = "llm" }))).Message);
    }

    [Fact]
    public void Generated_instructions_are_distinct_varied_and_their_references_keep_every_constraint()
    {
        var setup = new InstructionsProvider().Create(new EnvironmentConfig("instructions", "operation", 40, 2, 1, WrongAnswerReward: 0, TrainTasks: 300));
        Assert.Empty(setup.HeldOut.Select(t => t.Input).Intersect(setup.Train.Select(t => t.Input)));
        var kinds = setup.Train.SelectMany(t => Instruction.Parse(t.Input).Constraints.Select(c => c.Kind)).Distinct().Order().ToArray();
        Assert.Equal(["end", "has", "json", "lower", "max", "min", "no", "quote", "upper"], kinds);
        Hostile.AssertReferenceSolutionsSolve(setup.Environment, setup.Train.Concat(setup.HeldOut));
        Assert.All(setup.Train, t => Assert.True(setup.Environment.InitialState(t).Length < 90, setup.Environment.InitialState(t)));
    }

    [Fact]
    public void The_constraints_setting_makes_harder_instructions_whose_references_still_keep_every_constraint()
    {
        var settings = new Dictionary<string, string> { ["constraints"] = "4" };
        var setup = new InstructionsProvider().Create(new EnvironmentConfig("instructions", "operation", 40, 2, 1, WrongAnswerReward: 0, TrainTasks: 200, Settings: settings));
        // A length bound and 3 or 4 of keyword, forbidden word, casing, format.
        Assert.All(setup.Train.Concat(setup.HeldOut), t => Assert.InRange(Instruction.Parse(t.Input).Constraints.Count, 4, 5));
        Assert.Contains(setup.Train, t => Instruction.Parse(t.Input).Constraints.Count == 5);
        Hostile.AssertReferenceSolutionsSolve(setup.Environment, setup.Train.Concat(setup.HeldOut));
        Assert.Contains("environment.settings.constraints must be an integer in 1..4, got '9'", Assert.Throws<ArgumentException>(() =>
            new InstructionsProvider().Create(new EnvironmentConfig("instructions", "operation", 5, 1, 1, WrongAnswerReward: 0, TrainTasks: 5,
                Settings: new Dictionary<string, string> { ["constraints"] = "9" }))).Message);
    }

    sealed class FixedTopicJudge(bool onTopic) : ITopicJudge
    {
        public (bool OnTopic, string Reason) Judge(string prompt, string response) => (onTopic, onTopic ? "yes" : "no");
    }
}

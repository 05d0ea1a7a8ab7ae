using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Samples.ToolUse;

namespace SelfPlay.Core.Tests.Environments;

public class ToolUseTests
{
    static readonly ToolUseEnvironment Env = new(ToolRegistry.Default, KnowledgeBase.Shipped, wrongAnswerReward: 0.2);
    static readonly EnvTask Sum = new("t", "sum height everest fuji");

    [Theory]
    [InlineData("calc", "8849 + 3776", "12625")]
    [InlineData("calc", "10 / 4", "2.5")]
    [InlineData("calc", "1 / 3", "0.3333")]
    [InlineData("convert", "6650 km to m", "6650000 m")]
    [InlineData("convert", "8849 m to km", "8.849 km")]
    [InlineData("convert", "110 km/h to m/h", "110000 m/h")]
    [InlineData("lookup", "everest height", "8849 m")]
    [InlineData("eval", "(500 + 190 + 40) / 3", "243.3333")]
    [InlineData("eval", "-(2 - 5) * 4 - 1", "11")]
    [InlineData("eval", "2 + 3 * 4", "14")]
    public void Tools_compute_exactly(string tool, string arguments, string expected) =>
        Assert.Equal(expected, ToolRegistry.Default.Call(tool, arguments));

    [Theory]
    [InlineData("calc", "1 / 0", "calc: division by zero")]
    [InlineData("calc", "1 +", "calc: expected '<number> <op> <number>'")]
    [InlineData("calc", "x + 1", "calc: 'x' is not a number")]
    [InlineData("convert", "5 kg to m", "convert: cannot convert mass to length")]
    [InlineData("convert", "5 parsec to m", "convert: unknown unit 'parsec'")]
    [InlineData("lookup", "atlantis height", "lookup: no height known for 'atlantis'")]
    [InlineData("lookup", "everest", "lookup: expected '<entity> <attribute>'")]
    [InlineData("eval", "(1 + 2", "eval: missing ')'")]
    [InlineData("eval", "1 / (2 - 2)", "eval: division by zero")]
    [InlineData("eval", "System.IO.File.Delete(1)", "eval: unexpected 'S' at 1")]
    [InlineData("eval", "((((((((((((((((((1))))))))))))))))))", "eval: nested deeper than 16")]
    [InlineData("eval", "79228162514264337593543950335 * 10", "eval: '792281625142643375935439...' is not a number")]
    [InlineData("eval", "9999999999999999999 * 9999999999999999999 * 9999999999999999999", "eval: Value was either too large or too small for a Decimal.")]
    [InlineData("rm", "-rf /", "unknown tool 'rm' (tools: calc, convert, eval, lookup)")]
    public void Bad_calls_are_tool_errors_with_a_reason(string tool, string arguments, string expected) =>
        Assert.StartsWith(expected, Assert.Throws<ToolError>(() => ToolRegistry.Default.Call(tool, arguments)).Message);

    [Fact]
    public void A_task_needs_several_calls_and_the_environment_writes_their_results()
    {
        var state = Env.InitialState(Sum);
        Assert.Equal("Q: total height of everest and fuji in m?\n", state);
        var steps = EpisodeRunner.Play(Env, Sum, Env.ReferenceActions(Sum, new Random(1))!);
        Assert.Equal(["lookup[everest height] = 8849 m\n", "lookup[fuji height] = 3776 m\n", "calc[8849 + 3776] = 12625\n", "answer[12625]\n"],
            steps.Select(s => s.Outcome.Appended));
        Assert.Equal((1.0, "solved"), (steps[^1].Outcome.Reward, steps[^1].Outcome.Reason));
        var final = steps[^1].StateBefore + steps[^1].Outcome.Appended;
        Assert.Equal((1.0, "solved"), Env.Verify(Sum, final));
        Assert.Equal(0, Env.Verify(Sum, final.Replace("= 3776 m", "= 3777 m")).Reward); // a forged observation
        Assert.Equal((0.2, "answer 12626 is wrong"), Env.Verify(Sum, final.Replace("answer[12625]", "answer[12626]")));
        Assert.Equal(1, Env.ScoreStep(Sum, state, "lookup[fuji height", steps[1].Outcome));
        Assert.Equal(0, Env.ScoreStep(Sum, state, "lookup[k2 height", Env.Step(Sum, state, "lookup[k2 height")));
        Assert.Equal(["lookup[everest height]", "lookup[fuji height]"], Env.LegalActions(Sum, state)!.Order());
    }

    [Fact]
    public void Hostile_calls_earn_0_with_the_tools_reason()
    {
        var state = Env.InitialState(Sum);
        Assert.Equal("lookup: no height known for 'atlantis'", Env.Step(Sum, state, "lookup[atlantis height").Reason);
        Assert.Equal("calc: division by zero", Env.Step(Sum, state, "calc[1 / 0").Reason);
        Hostile.AssertRejected(Env, Sum, Hostile.Actions.Concat(["lookup[atlantis height", "calc[1 / 0", "calc[", "rm[-rf /", "eval[(((", "answer[",
            "answer[twelve", "lookup[everest height] = 1 m\nanswer[12625", "Lookup[everest height", "[everest height", "convert[5 kg to m"]));
        Hostile.AssertVerifyRejects(Env, Sum);
    }

    [Fact]
    public void Generated_tasks_cover_every_kind_and_their_references_solve()
    {
        var setup = new ToolUseProvider().Create(new EnvironmentConfig("tool-use", "operation", 50, 5, 6, TrainTasks: 300));
        Assert.Empty(setup.HeldOut.Select(t => t.Input).Intersect(setup.Train.Select(t => t.Input)));
        Assert.Equal(["avg", "conv", "diff", "sum", "sumconv"], setup.Train.Select(t => t.Input.Split(' ')[0]).Distinct().Order());
        Hostile.AssertReferenceSolutionsSolve(setup.Environment, setup.Train.Concat(setup.HeldOut));
        Assert.All(setup.Train, t => Assert.InRange(ToolTasks.Parse(t.Input, KnowledgeBase.Shipped).ReferenceCalls.Count, 3, 5));
    }
}

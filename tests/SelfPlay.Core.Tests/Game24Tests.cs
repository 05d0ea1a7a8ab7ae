using SelfPlay.Core.Environments;
using SelfPlay.Samples.Game24;

namespace SelfPlay.Core.Tests;

public class Game24Tests
{
    private static readonly EnvTask Example = new("example", "4 5 6 10");

    [Fact]
    public async Task Legal_actions_are_every_accepted_operation_and_a_uniform_policy_searches_over_them()
    {
        var env = new Game24Environment();
        var start = env.InitialState(Example);
        var first = env.LegalActions(Example, start)!;
        Assert.Equal(36, first.Count); // 6 pairs of distinct numbers × (+, *, − both ways, / both ways)
        Assert.Contains("4 * 5", first);
        Assert.Contains("10 - 6", first);
        Assert.All(first, a => Assert.False(env.Step(Example, start, a).IsTerminal));
        var next = start + env.Step(Example, start, "4 * 5").Appended;
        Assert.Equal(18, env.LegalActions(Example, next)!.Count);
        Assert.Null(new Game24Environment(Game24StepMode.WholeStep).LegalActions(Example, start));
        var twins = new EnvTask("twins", "1 1 4 6");
        Assert.Equal(4 + 3 * 6, env.LegalActions(twins, env.InitialState(twins))!.Count); // 1 op 1: +, *, −, / once; the two 1s give the same texts

        var proposer = new SelfPlay.Core.Search.UniformLegalActionProposer(env, [Example, twins]);
        var steps = (await proposer.ProposeAsync([new(start, 8, 1.0, 7)])).Single();
        Assert.Equal(8, steps.Count);
        Assert.All(steps, s => Assert.Contains(s.Action, first));
        Assert.All(steps, s => Assert.Equal(-Math.Log(36), s.LogProbs.Single(), 5));
        // The search alone solves an easy puzzle (people solve 1 1 4 6 99.6% of the time; 3 of 100 held-out puzzles at 16 simulations).
        var result = await SelfPlay.Core.Search.Evaluation.SearchAsync([twins], task => new SelfPlay.Core.Search.Mcts(env, proposer,
            new SelfPlay.Core.Search.VerifierEvaluator(env), new SelfPlay.Core.Search.MctsOptions(Simulations: 256, Expansions: 4, DepthLimit: 4, Seed: 1)), parallel: 1);
        Assert.Equal(1, result.Solved);
    }

    // ---- Rational ----

    [Fact]
    public void Rational_is_normalised_and_exact()
    {
        Assert.Equal("-3/2", new Rational(6, -4).ToString());
        Assert.Equal("20", new Rational(40, 2).ToString());
        Assert.Equal(new Rational(1, 2), new Rational(1, 3) + new Rational(1, 6));
        Assert.Equal(new Rational(-1, 6), new Rational(1, 6) - new Rational(1, 3));
        Assert.Equal(new Rational(24), new Rational(6) / (new Rational(1) - new Rational(3, 4)));
        Assert.Equal(new Rational(8, 3) * 9, new Rational(24));
        Assert.Equal("0", default(Rational).ToString());
        Assert.Equal(new Rational(0, 5), default);
        Assert.True(new Rational(1, 3) < new Rational(1, 2));
        Assert.Throws<DivideByZeroException>(() => new Rational(1) / default(Rational));
    }

    [Theory]
    [InlineData("20", 20, 1)]
    [InlineData("8/3", 8, 3)]
    [InlineData("-3", -3, 1)]
    [InlineData("-8/3", -8, 3)]
    [InlineData("6/4", 3, 2)]
    public void Rational_parses(string text, long numerator, long denominator)
    {
        var r = Rational.Parse(text);
        Assert.Equal(numerator, r.Numerator);
        Assert.Equal(denominator, r.Denominator);
    }

    [Theory]
    [InlineData("")]
    [InlineData("x")]
    [InlineData("3/0")]
    [InlineData("3/-4")]
    [InlineData(" 3")]
    [InlineData("1/2/3")]
    [InlineData("99999999999999999999999")]
    public void Rational_rejects_bad_text(string text)
    {
        Assert.Throws<FormatException>(() => Rational.Parse(text));
        Assert.False(Rational.TryParse(text, out _));
    }

    // ---- Solver ----

    [Fact]
    public void There_are_1820_puzzles_and_1362_are_solvable()
    {
        var all = Game24Solver.AllPuzzles();
        Assert.Equal(1820, all.Count);
        Assert.Equal(1820, all.Select(Game24Puzzles.Format).Distinct().Count());
        Assert.All(all, p => Assert.True(p.Length == 4 && p.Order().SequenceEqual(p) && p[0] >= 1 && p[3] <= 13));
        Assert.Equal(new[] { 1, 1, 1, 1 }, all[0]);
        Assert.Equal(new[] { 13, 13, 13, 13 }, all[^1]);
        for (var i = 1; i < all.Count; i++)
            Assert.True(Compare(all[i - 1], all[i]) < 0, "not in lexicographic order");
        Assert.Equal(1362, all.Count(Game24Solver.IsSolvable));
    }

    [Fact]
    public void Known_unsolvable_and_solvable_puzzles()
    {
        Assert.False(Game24Solver.IsSolvable([1, 1, 1, 1]));
        Assert.Empty(Game24Solver.Solve([1, 1, 1, 1]));
        Assert.True(Game24Solver.IsSolvable([4, 5, 6, 10]));
        // Only solvable through fractions.
        Assert.True(Game24Solver.IsSolvable([1, 3, 4, 6]));
        Assert.True(Game24Solver.IsSolvable([3, 3, 8, 8]));
        Assert.Contains(Game24Solver.Solve([3, 3, 8, 8]), s => s.Expression == "8 / (3 - (8 / 3))");
    }

    [Fact]
    public void Solve_returns_distinct_valid_solutions()
    {
        var solutions = Game24Solver.Solve([4, 5, 6, 10]);
        Assert.NotEmpty(solutions);
        Assert.Equal(solutions.Count, solutions.Select(s => string.Join(" | ", s.Operations)).Distinct().Count());
        Assert.Contains(solutions, s => string.Join(" | ", s.Operations) == "5 * 4 | 10 - 6 | 20 + 4"
            && s.Expression == "(5 * 4) + (10 - 6)");
        foreach (var s in solutions)
        {
            Assert.Equal(3, s.Operations.Count);
            Assert.Equal(new Rational(24), s.Operations[^1].Result);
            Assert.All(s.Operations, o => Assert.True(o.Op is not ('+' or '*') || o.Left >= o.Right, o.ToString()));
            Assert.True(Game24Verifier.Verify([4, 5, 6, 10], s.Expression).Ok, s.Expression);
        }
        // Equal numbers must not produce duplicate solutions.
        var duplicates = Game24Solver.Solve([6, 6, 6, 6]);
        Assert.Equal(duplicates.Count, duplicates.Select(s => string.Join(" | ", s.Operations)).Distinct().Count());
        Assert.Contains(duplicates, s => string.Join(" | ", s.Operations) == "6 + 6 | 12 + 6 | 18 + 6");
        Assert.Single(duplicates, s => string.Join(" | ", s.Operations) == "6 + 6 | 12 + 6 | 18 + 6");
    }

    // ---- Verifier ----

    [Theory]
    [InlineData("4 5 6 10", "Answer: (4 * 5) + (10 - 6) = 24")]
    [InlineData("4 5 6 10", "(10 - 6) + 4*5 = 24")]
    [InlineData("4 5 6 10", "4 * 5 + 10 - 6")]
    [InlineData("1 3 4 6", "Answer: 6 / (1 - 3 / 4) = 24")]
    [InlineData("3 3 8 8", "8 / (3 - 8 / 3)")]
    [InlineData("1 1 4 6", " ( ( 6 * 4 ) * 1 ) * 1 = 24 ")]
    public void Verifier_accepts_correct_answers(string puzzle, string answer)
    {
        var (ok, reason) = Game24Verifier.Verify(Game24Puzzles.Parse(puzzle), answer);
        Assert.True(ok, reason);
    }

    [Theory]
    [InlineData("4 5 6 10", "(7 * 5) - (10 - 6) = 24", "uses 7, which is not in the puzzle")]
    [InlineData("4 5 6 10", "4 * 4 + 10 - 6 = 24", "uses 4 twice but the puzzle has it once")]
    [InlineData("4 5 6 10", "4 * 6 = 24", "does not use 5")]
    [InlineData("4 4 6 10", "4 * 6 = 24", "uses 4 once but the puzzle has it twice")]
    [InlineData("4 4 6 10", "4 * 6 + 10 - 10", "uses 10 twice but the puzzle has it once")]
    [InlineData("4 5 6 10", "4 + 5 + 6 + 10", "evaluates to 25, not 24")]
    [InlineData("4 5 6 10", "Answer: 4 / 5 + 6 + 10 = 24", "evaluates to 84/5, not 24")]
    [InlineData("4 4 6 10", "6 / (4 - 4) + 10", "division by zero")]
    public void Verifier_rejects_with_reason(string puzzle, string answer, string reason)
    {
        Assert.Equal((false, reason), Game24Verifier.Verify(Game24Puzzles.Parse(puzzle), answer));
    }

    [Theory]
    [InlineData("")]
    [InlineData("hello")]
    [InlineData("Answer:")]
    [InlineData("4 * (5 + 6 - 10")]
    [InlineData("4 * 5 + 10 - 6)")]
    [InlineData("4 * 5 + 10 - 6 = 23")]
    [InlineData("4 * 5 + 10 - 6 = 24 = 24")]
    [InlineData("4 ** 5 + 10 - 6")]
    [InlineData("-4 * 5 + 10 - 6")]
    [InlineData("99999999999999999999999 + 4")]
    public void Verifier_rejects_garbage(string answer)
    {
        var (ok, reason) = Game24Verifier.Verify([4, 5, 6, 10], answer);
        Assert.False(ok);
        Assert.StartsWith("cannot parse", reason);
    }

    [Fact]
    public void Verifier_never_throws_on_pathological_text()
    {
        Assert.False(Game24Verifier.Verify([4, 5, 6, 10], new string('(', 5000)).Ok);
        Assert.False(Game24Verifier.Verify([4, 5, 6, 10], new string('(', 200) + "4" + new string(')', 200)).Ok);
        Assert.False(Game24Verifier.Verify([4, 5, 6, 10], null!).Ok);
    }

    // ---- Environment, operation mode ----

    [Fact]
    public void Operation_mode_plays_the_example()
    {
        var env = new Game24Environment();
        Assert.Equal("game24", env.Name);
        Assert.Equal(" =", env.StepStop);
        Assert.Equal("Input: 4 5 6 10\n", env.InitialState(Example));

        var steps = EpisodeRunner.Play(env, Example, ["4 * 5", "10 - 6", "20 + 4"]);
        Assert.Equal(3, steps.Count);
        Assert.Equal("4 * 5 = 20 (left: 6 10 20)\n", steps[0].Outcome.Appended);
        Assert.False(steps[0].Outcome.IsTerminal);
        Assert.Equal("10 - 6 = 4 (left: 4 20)\n", steps[1].Outcome.Appended);
        Assert.False(steps[1].Outcome.IsTerminal);
        Assert.Equal("20 + 4 = 24 (left: 24)\nAnswer: (4 * 5) + (10 - 6) = 24\n", steps[2].Outcome.Appended);
        Assert.True(steps[2].Outcome.IsTerminal);
        Assert.Equal(1, steps[2].Outcome.Reward);
        Assert.Equal("solved", steps[2].Outcome.Reason);
        Assert.Equal("Input: 4 5 6 10\n4 * 5 = 20 (left: 6 10 20)\n10 - 6 = 4 (left: 4 20)\n", steps[2].StateBefore);
    }

    [Fact]
    public void Operation_mode_tolerates_surrounding_whitespace()
    {
        var outcome = new Game24Environment().Step(Example, "Input: 4 5 6 10\n", "  4 * 5 \n");
        Assert.Equal(StepOutcome.Continue("4 * 5 = 20 (left: 6 10 20)\n"), outcome);
    }

    [Fact]
    public void Operation_mode_handles_fractions()
    {
        var steps = EpisodeRunner.Play(new Game24Environment(), new EnvTask("f", "1 3 4 6"), ["3 / 4", "1 - 3/4", "6 / 1/4"]);
        Assert.Equal("3 / 4 = 3/4 (left: 3/4 1 6)\n", steps[0].Outcome.Appended);
        Assert.Equal("1 - 3/4 = 1/4 (left: 1/4 6)\n", steps[1].Outcome.Appended);
        Assert.Equal("6 / 1/4 = 24 (left: 24)\nAnswer: 6 / (1 - (3 / 4)) = 24\n", steps[2].Outcome.Appended);
        Assert.True(steps[2].Outcome.IsTerminal);
        Assert.Equal(1, steps[2].Outcome.Reward);
    }

    [Fact]
    public void Operation_mode_allows_negative_intermediates()
    {
        var steps = EpisodeRunner.Play(new Game24Environment(), Example, ["4 - 5", "6 * -1", "10 - -6"]);
        Assert.Equal("4 - 5 = -1 (left: -1 6 10)\n", steps[0].Outcome.Appended);
        Assert.Equal("6 * -1 = -6 (left: -6 10)\n", steps[1].Outcome.Appended);
        Assert.Equal("10 - -6 = 16 (left: 16)\nAnswer: 10 - (6 * (4 - 5)) = 16\n", steps[2].Outcome.Appended);
        Assert.Equal(0, steps[2].Outcome.Reward);
    }

    [Fact]
    public void Operation_mode_wrong_final_value_gives_reward_0()
    {
        var steps = EpisodeRunner.Play(new Game24Environment(), Example, ["4 * 5", "10 - 6", "20 - 4"]);
        var last = steps[^1].Outcome;
        Assert.True(last.IsTerminal);
        Assert.Equal(0, last.Reward);
        Assert.Equal("result is 16, not 24", last.Reason);
    }

    [Theory]
    [InlineData("7 * 5", "7 is not available")]
    [InlineData("5 * 5", "5 is used twice")]
    [InlineData("", "empty")]
    [InlineData("   ", "empty")]
    [InlineData("hello", "cannot parse")]
    [InlineData("4 *", "cannot parse")]
    [InlineData("4 ** 5", "cannot parse")]
    [InlineData("4*5", "cannot parse")]
    [InlineData("4 * 5 * 6", "cannot parse")]
    [InlineData("4 * 5\n10 - 6", "cannot parse")]
    [InlineData("Answer: (4 * 5) + (10 - 6) = 24", "cannot parse")]
    public void Operation_mode_invalid_actions_end_the_episode(string action, string reason)
    {
        var outcome = new Game24Environment().Step(Example, "Input: 4 5 6 10\n", action);
        AssertInvalid(outcome);
        Assert.Contains(reason, outcome.Reason);
    }

    [Fact]
    public void Operation_mode_rejects_reused_and_divide_by_zero_and_huge_actions()
    {
        var env = new Game24Environment();
        // 20 is used up by the second step, so it cannot be used again.
        var reused = EpisodeRunner.Play(env, Example, ["4 * 5", "20 - 10", "20 + 6"]);
        AssertInvalid(reused[^1].Outcome);
        Assert.Contains("20 is not available", reused[^1].Outcome.Reason);

        var byZero = EpisodeRunner.Play(env, new EnvTask("z", "4 4 6 10"), ["4 - 4", "6 / 0"]);
        Assert.False(byZero[0].Outcome.IsTerminal);
        AssertInvalid(byZero[1].Outcome);
        Assert.Equal("division by zero", byZero[1].Outcome.Reason);

        var huge = env.Step(Example, "Input: 4 5 6 10\n", new string('4', 10_000));
        AssertInvalid(huge);
        Assert.Equal(new string('4', 64) + "\n", huge.Appended);

        var lines = env.Step(Example, "Input: 4 5 6 10\n", string.Join("\n", Enumerable.Repeat("4 * 5", 30)));
        AssertInvalid(lines);
    }

    [Fact]
    public void Step_on_a_broken_state_is_terminal_not_an_exception()
    {
        var env = new Game24Environment();
        AssertInvalid(env.Step(Example, "", "4 * 5"));
        AssertInvalid(env.Step(Example, "Input: 4 5 6 10\n4 * 9 = 36 (left: 5 6 36)\n", "4 * 5"));
        AssertInvalid(env.Step(Example, "Input: 4 5 6 10\ngarbage\n", "4 * 5"));
        AssertInvalid(env.Step(Example, "Input: 4 5 6 10\n4 * 5 = 20 (left: 6 10 20)\n10 - 6 = 4 (left: 4 20)\n20 + 4 = 24 (left: 24)\nAnswer: (4 * 5) + (10 - 6) = 24\n", "4 * 5"));
    }

    // ---- Environment, whole-step mode ----

    [Fact]
    public void Whole_step_mode_accepts_a_tot_trace()
    {
        var env = new Game24Environment(Game24StepMode.WholeStep);
        Assert.Equal("\n", env.StepStop);
        var steps = EpisodeRunner.Play(env, Example,
        [
            "4 * 5 = 20 (left: 6 10 20)",
            "10 - 6 = 4 (left: 20 4)",
            "20 + 4 = 24 (left: 24)",
            "Answer: (4 * 5) + (10 - 6) = 24",
        ]);
        Assert.Equal(4, steps.Count);
        Assert.Equal("4 * 5 = 20 (left: 6 10 20)\n", steps[0].Outcome.Appended);
        Assert.Equal("10 - 6 = 4 (left: 4 20)\n", steps[1].Outcome.Appended);
        Assert.Equal("20 + 4 = 24 (left: 24)\n", steps[2].Outcome.Appended);
        Assert.All(steps.Take(3), s => Assert.False(s.Outcome.IsTerminal));
        Assert.Equal("Answer: (4 * 5) + (10 - 6) = 24\n", steps[3].Outcome.Appended);
        Assert.True(steps[3].Outcome.IsTerminal);
        Assert.Equal(1, steps[3].Outcome.Reward);
    }

    [Theory]
    [InlineData("4 * 5 = 21 (left: 6 10 21)", "4 * 5 is 20, not 21")]
    [InlineData("4 * 5 = 20 (left: 6 10 21)", "left should be 6 10 20, not 6 10 21")]
    [InlineData("4 * 5 = 20 (left: 6 10)", "left should be 6 10 20, not 6 10")]
    [InlineData("4 * 7 = 28 (left: 5 6 10 28)", "7 is not available")]
    [InlineData("4 * 5 = 20", "cannot parse")]
    [InlineData("4 * 5", "cannot parse")]
    [InlineData("Answer: (4 * 5) + (10 - 6) = 24", "an answer was given while 4 numbers are left")]
    public void Whole_step_mode_rejects_wrong_lines(string action, string reason)
    {
        var outcome = new Game24Environment(Game24StepMode.WholeStep).Step(Example, "Input: 4 5 6 10\n", action);
        AssertInvalid(outcome);
        Assert.Contains(reason, outcome.Reason);
    }

    [Fact]
    public void Whole_step_mode_checks_the_answer()
    {
        var env = new Game24Environment(Game24StepMode.WholeStep);
        const string state = "Input: 4 5 6 10\n4 * 5 = 20 (left: 6 10 20)\n10 - 6 = 4 (left: 4 20)\n20 + 4 = 24 (left: 24)\n";
        var wrong = env.Step(Example, state, "Answer: (4 * 5) + (10 - 5) = 24");
        Assert.True(wrong.IsTerminal);
        Assert.Equal(0, wrong.Reward);
        Assert.Equal("uses 5 twice but the puzzle has it once", wrong.Reason);
        AssertInvalid(env.Step(Example, state, "24 * 1 = 24 (left: 24)"));
    }

    // ---- Verify (from the final state text alone) ----

    [Fact]
    public void Verify_rechecks_the_final_state()
    {
        var env = new Game24Environment();
        const string steps = "Input: 4 5 6 10\n4 * 5 = 20 (left: 6 10 20)\n10 - 6 = 4 (left: 4 20)\n";
        Assert.Equal((1.0, "solved"), env.Verify(Example, steps + "20 + 4 = 24 (left: 24)\nAnswer: (4 * 5) + (10 - 6) = 24\n"));
        Assert.Equal((0.0, "result is 16, not 24"),
            env.Verify(Example, steps + "20 - 4 = 16 (left: 16)\nAnswer: (4 * 5) - (10 - 6) = 16\n"));
        // Tampered texts: a wrong written result, a forged answer, another puzzle, no answer, garbage.
        Assert.Equal(0, env.Verify(Example, steps.Replace("= 20 (", "= 21 (") + "20 + 4 = 24 (left: 24)\nAnswer: (4 * 5) + (10 - 6) = 24\n").Reward);
        Assert.Equal(0, env.Verify(Example, steps + "20 + 4 = 24 (left: 24)\nAnswer: 4 * 6 = 24\n").Reward);
        Assert.Equal(0, env.Verify(new EnvTask("o", "4 5 6 11"), steps + "20 + 4 = 24 (left: 24)\nAnswer: (4 * 5) + (10 - 6) = 24\n").Reward);
        Assert.Equal(0, env.Verify(Example, "Input: 4 5 6 10\nAnswer: (4 * 5) + (10 - 6) = 24\n").Reward);
        Assert.Equal(0, env.Verify(Example, steps).Reward);
        Assert.Equal(0, env.Verify(Example, "").Reward);
        Assert.Equal(0, env.Verify(Example, null!).Reward);
        Assert.Equal(0, env.Verify(Example, "Input: 4 5 6 10\n" + new string('(', 10_000)).Reward);

        var whole = new Game24Environment(Game24StepMode.WholeStep);
        var invalid = EpisodeRunner.Play(whole, Example, ["4 * 5 = 21 (left: 6 10 21)"])[^1];
        Assert.Equal(0, whole.Verify(Example, invalid.StateBefore + invalid.Outcome.Appended).Reward);
    }

    // ---- Reference actions ----

    [Fact]
    public void Reference_actions_solve_every_solvable_puzzle_in_both_modes()
    {
        var random = new Random(7);
        var operation = new Game24Environment();
        var whole = new Game24Environment(Game24StepMode.WholeStep);
        var solved = 0;
        foreach (var puzzle in Game24Solver.AllPuzzles())
        {
            var task = new EnvTask(Game24Puzzles.Format(puzzle), Game24Puzzles.Format(puzzle));
            var operationActions = operation.ReferenceActions(task, random);
            var wholeActions = whole.ReferenceActions(task, random);
            if (operationActions is null)
            {
                Assert.Null(wholeActions);
                Assert.False(Game24Solver.IsSolvable(puzzle));
                continue;
            }
            Assert.NotNull(wholeActions);
            Assert.Equal(3, operationActions.Count);
            Assert.Equal(4, wholeActions.Count);
            foreach (var (env, actions) in new[] { (operation, operationActions), (whole, wholeActions) })
            {
                var steps = EpisodeRunner.Play(env, task, actions);
                var last = steps[^1].Outcome;
                Assert.True(last.IsTerminal && last.Reward == 1, $"{task.Input} ({env.Mode}): {last.Reason}");
                var verified = env.Verify(task, steps[^1].StateBefore + last.Appended);
                Assert.True(verified.Reward == 1, $"{task.Input} ({env.Mode}) verify: {verified.Reason}");
            }
            solved++;
        }
        Assert.Equal(1362, solved);
    }

    [Fact]
    public void Reference_actions_are_seeded_and_formatted_per_mode()
    {
        var a = new Game24Environment().ReferenceActions(Example, new Random(1));
        var b = new Game24Environment().ReferenceActions(Example, new Random(1));
        Assert.Equal(a, b);
        var whole = new Game24Environment(Game24StepMode.WholeStep).ReferenceActions(Example, new Random(1))!;
        Assert.Matches(@"^\S+ [-+*/] \S+ = \S+ \(left: [^)]+\)$", whole[0]);
        Assert.StartsWith("Answer: ", whole[3]);
        Assert.EndsWith(" = 24", whole[3]);
        Assert.Null(new Game24Environment().ReferenceActions(new EnvTask("u", "1 1 1 1"), new Random(1)));
    }

    // ---- Puzzle sets ----

    [Fact]
    public void Split_is_seeded_disjoint_and_complete()
    {
        var (train, heldOut) = Game24Puzzles.Split(42, 100);
        var (train2, heldOut2) = Game24Puzzles.Split(42, 100);
        Assert.Equal(100, heldOut.Count);
        Assert.Equal(1262, train.Count);
        Assert.Equal(heldOut.Select(Game24Puzzles.Format), heldOut2.Select(Game24Puzzles.Format));
        Assert.Equal(train.Select(Game24Puzzles.Format), train2.Select(Game24Puzzles.Format));

        var trainSet = train.Select(Game24Puzzles.Format).ToHashSet();
        Assert.Equal(1262, trainSet.Count);
        Assert.DoesNotContain(heldOut, p => trainSet.Contains(Game24Puzzles.Format(p)));
        var solvable = Game24Solver.AllPuzzles().Where(Game24Solver.IsSolvable).Select(Game24Puzzles.Format);
        Assert.True(trainSet.Union(heldOut.Select(Game24Puzzles.Format)).ToHashSet().SetEquals(solvable));

        var other = Game24Puzzles.Split(43, 100).HeldOut;
        Assert.NotEqual(heldOut.Select(Game24Puzzles.Format), other.Select(Game24Puzzles.Format));
        Assert.Throws<ArgumentOutOfRangeException>(() => Game24Puzzles.Split(42, 1363));
        Assert.Empty(Game24Puzzles.Split(42, 0).HeldOut);
    }

    [Fact]
    public void Puzzle_text_round_trips_and_rejects_bad_input()
    {
        Assert.Equal("4 5 6 10", Game24Puzzles.Format([4, 5, 6, 10]));
        Assert.Equal(new[] { 10, 4, 5, 6 }, Game24Puzzles.Parse(" 10 4  5 6 "));
        foreach (var bad in new[] { "", "4 5 6", "4 5 6 10 11", "4 5 6 14", "0 4 5 6", "a b c d", "4,5,6,10", "-4 5 6 10" })
        {
            var e = Assert.Throws<FormatException>(() => Game24Puzzles.Parse(bad));
            Assert.DoesNotContain("\n", e.Message);
        }
    }

    private const string CsvHeader = "Rank,Puzzles,AMT (s),Solved rate,1-sigma Mean (s),1-sigma STD (s)";

    private const string CsvRows = """
        1,1 1 4 6,4.4,99.60%,4.67,1.48
        2,1 1 11 11,4.41,99.60%,4.68,1.45
        3,1 1 3 8,4.45,99.60%,4.69,1.48
        4,1 1 1 8,4.48,99.50%,4.72,1.54
        """;

    [Theory]
    [InlineData(null, "1 1 4 6|1 1 11 11|1 1 3 8|1 1 1 8")]
    [InlineData("1:3", "1 1 11 11|1 1 3 8")]
    [InlineData(":2", "1 1 4 6|1 1 11 11")]
    [InlineData("2:", "1 1 3 8|1 1 1 8")]
    [InlineData("4:", "")]
    public void LoadCsv_reads_the_tot_format_and_slices(string? range, string expected)
    {
        var path = WriteTemp(CsvHeader + "\n" + CsvRows + "\n");
        try
        {
            Assert.Equal(expected, string.Join("|", Game24Puzzles.LoadCsv(path, range).Select(Game24Puzzles.Format)));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void LoadCsv_reports_errors()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"no-such-{Guid.NewGuid():N}.csv");
        var notFound = Assert.Throws<FileNotFoundException>(() => Game24Puzzles.LoadCsv(missing, null));
        Assert.Contains(missing, notFound.Message);

        var badHeader = WriteTemp("Id,Puzzle\n1,1 1 4 6\n");
        var badRow = WriteTemp(CsvHeader + "\n1,1 1 4 6,4.4\n2,1 1 x 11,4.41\n");
        var good = WriteTemp(CsvHeader + "\n" + CsvRows + "\n");
        try
        {
            Assert.Throws<FormatException>(() => Game24Puzzles.LoadCsv(badHeader, null));
            var row = Assert.Throws<FormatException>(() => Game24Puzzles.LoadCsv(badRow, null));
            Assert.Contains("line 3", row.Message);
            Assert.DoesNotContain("\n", row.Message);
            foreach (var range in new[] { "a:b", "3:1", "0:9", "5", "1:2:3", "-1:2" })
            {
                var e = Record.Exception(() => Game24Puzzles.LoadCsv(good, range));
                Assert.True(e is FormatException or ArgumentException, $"range '{range}': {e?.GetType().Name ?? "no exception"}");
                Assert.DoesNotContain("\n", e!.Message);
            }
        }
        finally
        {
            File.Delete(badHeader);
            File.Delete(badRow);
            File.Delete(good);
        }
    }

    private static string WriteTemp(string content)
    {
        var path = Path.Combine(Path.GetTempPath(), $"game24-{Guid.NewGuid():N}.csv");
        File.WriteAllText(path, content);
        return path;
    }

    private static void AssertInvalid(StepOutcome outcome)
    {
        Assert.True(outcome.IsTerminal);
        Assert.Equal(0, outcome.Reward);
        Assert.False(string.IsNullOrWhiteSpace(outcome.Reason));
        Assert.DoesNotContain("\n", outcome.Reason);
        Assert.EndsWith("\n", outcome.Appended);
        Assert.Equal(1, outcome.Appended.Count(c => c == '\n'));
        Assert.True(outcome.Appended.Length <= 65);
    }

    private static int Compare(int[] a, int[] b)
    {
        for (var i = 0; i < a.Length; i++)
            if (a[i] != b[i]) return a[i].CompareTo(b[i]);
        return 0;
    }
}

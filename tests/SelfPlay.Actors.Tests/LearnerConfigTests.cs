using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Learning;
using SelfPlay.Core.Preferences;
using SelfPlay.Core.Trees;
using SelfPlay.Models.Training;

namespace SelfPlay.Actors.Tests;

public class LearnerConfigTests
{
    [Fact]
    public void Every_loss_and_extractor_setting_parses_into_the_learner_options()
    {
        var c = ConfigLoader.Parse(ConfigLoader.Build(null, ["learner.loss=tpo", "preferences.extractor=ranked-lists", "learner.step-weights=similar",
            "learner.gradient-accumulation=4", "learner.alpha=0.5", "preferences.margin=0.25", "preferences.treepo-weighting=group-size"]));
        var loss = LearnerSettings.Loss(c.Learner);
        Assert.Equal(("tpo", StepWeighting.Similar, 0.5), (loss.Name, loss.StepWeights, loss.Alpha));
        Assert.Equal(4, LearnerSettings.Trainer(c.Learner, "x").GradientAccumulation);
        var extractor = LearnerSettings.Extractor(c.Preferences);
        Assert.Equal((0.25, "group-size"), (extractor.Margin, extractor.TreePoWeighting));
        foreach (var name in Losses.All.Where(l => l.Accepts.Contains(ExampleKind.Pair)).Select(l => l.Name))
            Assert.Equal(name, ConfigLoader.Parse(ConfigLoader.Build(null, [$"learner.loss={name}"])).Learner.Loss);
        Assert.Equal("sft", ConfigLoader.Parse(ConfigLoader.Build(null, ["learner.loss=sft", "preferences.extractor=solved-paths"])).Learner.Loss);
        var distil = ConfigLoader.Parse(ConfigLoader.Build(null, ["learner.loss=policy-ce", "preferences.extractor=visit-distribution", "preferences.visit-temperature=0.5"]));
        Assert.Equal(0.5, LearnerSettings.Extractor(distil.Preferences).VisitTemperature);
        Assert.True(distil.Learner.SolutionBuffer);
        Assert.False(ConfigLoader.Parse(ConfigLoader.Build(null, ["learner.solution-buffer=false"])).Learner.SolutionBuffer);
        foreach (var name in new[] { "treerpo", "branchgrpo", "treepo" })
            Assert.Equal(name, ConfigLoader.Parse(ConfigLoader.Build(null, ["learner.loss=ppo-clip", $"preferences.extractor={name}"])).Preferences.Extractor);
    }

    [Theory]
    [InlineData("learner.loss=dpo2", "learner.loss 'dpo2' is not implemented")]
    [InlineData("preferences.extractor=magic", "preferences.extractor 'magic' is not implemented")]
    [InlineData("learner.loss=ppo-clip", "cannot train on the pair examples of preferences.extractor 'mcts-dpo'")]
    [InlineData("preferences.extractor=treepo", "learner.loss 'dpo' cannot train on the advantage examples")]
    [InlineData("learner.label-smoothing=0.5", "label-smoothing must be in [0, 0.5)")]
    [InlineData("learner.step-weights=both", "step-weights must be dissimilar, similar or none")]
    [InlineData("learner.reference=oracle", "reference must be warmup, previous or behaviour")]
    [InlineData("learner.import=/no/such/file.jsonl", "learner.import: file not found")]
    [InlineData("learner.import-format=csv", "import-format must be one of")]
    [InlineData("preferences.rejected=best", "rejected must be worst or random")]
    [InlineData("learner.solutions-per-task=-1", "solutions-per-task must be non-negative")]
    [InlineData("learner.dropout=1", "learner.dropout must be in [0, 1)")]
    public void Bad_learner_settings_fail_with_one_line(string set, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(ConfigLoader.Build(null, [set])));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public async Task Solutions_per_task_draws_distinct_solutions_from_every_solved_tree_of_a_task_newest_first()
    {
        var tokenizer = new SelfPlay.Models.Tokenization.CharTokenizer();
        PreferenceTree Tree(string task, int iteration, params (string Step, int Visits)[] solutions)
        {
            var t = PreferenceTree.Create(PreferenceTree.MakeId("c", iteration, task), "Input: 1 2 3 4\n");
            (t.Campaign, t.TaskId, t.Iteration) = ("c", task, iteration);
            foreach (var (step, visits) in solutions)
                t.AddChild(0, new TreeNode { Action = step, StepText = step + "\n", TokenIds = tokenizer.Encode(step + "\n"), LogProbs = [-0.5f, -0.5f], Visits = visits,
                    Q = 1, IsTerminal = true, TerminalReward = 1 });
            return t;
        }
        // Task x: "a" in iteration 1; "b" (more visited) and "a" again in 2; "c" in 3. Task y: "d" in 2 only.
        var byIteration = new Dictionary<int, IReadOnlyList<PreferenceTree>>
        {
            [1] = [Tree("x", 1, ("a", 3))],
            [2] = [Tree("x", 2, ("b", 5), ("a", 2)), Tree("y", 2, ("d", 1))],
            [3] = [Tree("x", 3, ("c", 4))],
        };
        async Task<(List<string> Texts, int NewExamples, int Sources)> Collect(int perTask)
        {
            var c = ConfigLoader.Parse(ConfigLoader.Build(null, ["learner.loss=sft", "preferences.extractor=solved-paths", $"learner.solutions-per-task={perTask}"]));
            var set = await PreferenceLearning.CollectAsync(c, 3, i => Task.FromResult(byIteration[i]), tokenizer);
            return ([.. set.Examples.Select(e => e.Candidates[0].Text)], set.NewExamples, set.Sources.Count);
        }
        // 0: the newest solved tree of each task.
        // (Tasks in the order of their newest tree's id: y's c/2/y/0 before x's c/3/x/0.)
        var zero = await Collect(0);
        Assert.Equal(["d\n", "c\n"], zero.Texts);
        Assert.Equal((1, 2), (zero.NewExamples, zero.Sources));
        // 2: x's newest two distinct solutions (iteration 3's, then iteration 2's most visited); y has one.
        var two = await Collect(2);
        Assert.Equal(["d\n", "c\n", "b\n"], two.Texts);
        Assert.Equal((1, 3), (two.NewExamples, two.Sources));
        // 5: every distinct solution once; iteration 1's "a" repeats iteration 2's and adds no source.
        var five = await Collect(5);
        Assert.Equal(["d\n", "c\n", "b\n", "a\n"], five.Texts);
        Assert.Equal(3, five.Sources);
    }
}

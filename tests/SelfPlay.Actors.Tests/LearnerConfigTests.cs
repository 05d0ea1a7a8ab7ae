using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Learning;
using SelfPlay.Core.Preferences;
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
    public void Bad_learner_settings_fail_with_one_line(string set, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(ConfigLoader.Build(null, [set])));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}

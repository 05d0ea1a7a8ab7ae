using System.Text.Json;
using System.Text.RegularExpressions;
using SelfPlay.Core.Preferences;
using SelfPlay.Models.Training;

namespace SelfPlay.Models.Tests;

/// <summary>The loss registry is the one place that knows a loss by name.</summary>
public class LossRegistryTests
{
    [Fact]
    public void Every_loss_has_one_entry_and_consistent_traits()
    {
        Assert.Equal(Losses.All.Count, Losses.All.Select(l => l.Name).Distinct().Count());
        foreach (var l in Losses.All)
        {
            Assert.NotEmpty(l.Accepts);
            // A loss without pairs has no chosen/rejected figures; one that needs behaviour log-probs trains one completion.
            if (l.NeedsBehaviour) Assert.False(l.Pairwise);
            if (!l.Accepts.Contains(ExampleKind.Pair) && !l.Accepts.Contains(ExampleKind.Distribution)) Assert.False(l.Pairwise, l.Name);
        }
        Assert.True(Losses.Get("sft").ReferenceFree);
        Assert.False(Losses.Get("dpo").ReferenceFree);
        Assert.True(Losses.Get("tpo").UsesStepEmbeddings(new LossOptions("tpo")));
        Assert.False(Losses.Get("tpo").UsesStepEmbeddings(new LossOptions("tpo", StepWeights: StepWeighting.None)));
        Assert.Equal("mcts-dpo", Losses.Get("cdpo").OnlyExtractor?.Extractor);
        var unknown = Assert.Throws<ArgumentException>(() => Losses.Get("dop"));
        Assert.Contains("unknown loss 'dop' (known: dpo, cdpo", unknown.Message);
    }

    [Fact]
    public void No_code_outside_the_registry_tests_a_loss_name()
    {
        var names = string.Join("|", Losses.All.Select(l => Regex.Escape(l.Name)));
        // A comparison of something called loss/Loss with a loss's name: ==, !=, is, or, switch arms.
        var test = new Regex($@"[Ll]oss\w*(\.Name)?\s*(==|!=|is|switch)[^;]*""({names})""");
        var root = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../src"));
        var offenders = Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/bin/") && !f.Contains("/obj/") && Path.GetFileName(f) != "Losses.cs")
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (f, i, line)))
            .Where(x => test.IsMatch(x.line))
            .Select(x => $"{Path.GetRelativePath(root, x.f)}:{x.i + 1}: {x.line.Trim()}")
            .ToList();
        Assert.True(offenders.Count == 0, string.Join("\n", offenders));
    }

    [Fact]
    public void Batch_metrics_add_and_keep_the_trainer_state_layout()
    {
        var a = new BatchMetrics(1, 2, 1, 0.5, -3, -4, 1, 0);
        var sum = BatchMetrics.Zero + a + a;
        Assert.Equal(new BatchMetrics(2, 4, 2, 1, -6, -8, 2, 0), sum);
        var stats = sum.Means(3, pairwise: true);
        Assert.Equal((3, 0.5, 4, 0.5, 0.25, -1.5, -2.0), (stats.Epoch, stats.Loss, stats.Examples, stats.RewardAccuracy, stats.RewardMargin, stats.ChosenLogProb, stats.RejectedLogProb));
        Assert.True(double.IsNaN(sum.Means(0, pairwise: false).RewardAccuracy));
        // trainer-state.json has always held the eight sums as an array: a checkpoint written before keeps resuming.
        Assert.Equal("[2,4,2,1,-6,-8,2,0]", JsonSerializer.Serialize(sum));
        Assert.Equal(sum, JsonSerializer.Deserialize<BatchMetrics>("[2,4,2,1,-6,-8,2,0]"));
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<BatchMetrics>("[1,2]"));
    }
}

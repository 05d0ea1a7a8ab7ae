using System.Text.Json;

namespace SelfPlay.Integration.Tests;

/// <summary>What a campaign iteration must show when it learned something: pairs, new weights, a falling training loss.</summary>
public static class TrainingChecks
{
    /// <summary>Of model.safetensors, or of a LoRA version's adapter_model.safetensors.</summary>
    public static string WeightsSha256(string runDir, int version) =>
        SelfPlay.Models.Checkpoints.Checkpoint.WeightsSha256(Path.Combine(runDir, "checkpoints", $"v{version}"));

    /// <summary>
    /// Iteration <paramref name="iteration"/> trained on pairs (&gt; 0), its weights differ from the previous version's,
    /// and its optimizer steps' loss fell (the learner must run at least two steps).
    /// </summary>
    public static void AssertLearned(string runDir, int iteration = 1)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json")));
        var row = doc.RootElement.GetProperty("iterations")[iteration];
        AssertTrainedOnPairs(runDir, iteration, row);
        var steps = row.GetProperty("learner").GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("loss").GetDouble()).ToList();
        Assert.True(steps.Count >= 2, $"{steps.Count} optimizer steps: too few to see the loss fall");
        Assert.True(steps[^1] < steps[0], $"the training loss did not fall: {string.Join(", ", steps)}");
    }

    /// <summary>
    /// Iteration <paramref name="iteration"/> trained on pairs (&gt; 0) with no empty span and no identical texts, and
    /// its weights differ from the previous version's (what a quick campaign of one optimizer step can show).
    /// </summary>
    public static void AssertTrainedOnPairs(string runDir, int iteration = 1)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json")));
        AssertTrainedOnPairs(runDir, iteration, doc.RootElement.GetProperty("iterations")[iteration]);
    }

    static void AssertTrainedOnPairs(string runDir, int iteration, JsonElement row)
    {
        Assert.True(row.GetProperty("pairs").GetInt32() > 0, $"iteration {iteration} yielded no pairs");
        // What the examples from the trees are, recorded per iteration: none with an empty span or the same text twice.
        var pairs = row.GetProperty("pairDiagnostics");
        Assert.True(pairs.GetProperty("examples").GetInt32() > 0);
        Assert.Equal((0, 0), (pairs.GetProperty("emptySpans").GetInt32(), pairs.GetProperty("identical").GetInt32()));
        Assert.Equal(pairs.GetProperty("pairs").GetInt32(), pairs.GetProperty("scoreGapBins").EnumerateArray().Sum(b => b.GetInt32()));
        Assert.NotEqual(WeightsSha256(runDir, iteration - 1), WeightsSha256(runDir, iteration));
    }
}

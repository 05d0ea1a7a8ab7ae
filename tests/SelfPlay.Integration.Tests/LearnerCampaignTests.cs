using System.Text.Json;

namespace SelfPlay.Integration.Tests;

/// <summary>
/// The Game-of-24 campaign with each headline loss (a tiny, seconds-long version) from the shared warm-up, whose trees
/// have real preferences (<see cref="Game24Warmup"/>), plus an imported JSONL file (learner.import): every loss trains
/// on both, changes the weights and lowers its training loss.
/// </summary>
[Collection(Game24WarmupCollection.Name)]
public sealed class LearnerCampaignTests(Game24Warmup warmup)
{
    [Theory]
    [InlineData("dpo", "mcts-dpo", false)]
    [InlineData("step-apo", "mcts-dpo", false)]
    [InlineData("tpo", "ranked-lists", false)]
    [InlineData("dpo", "mcts-dpo", true)]
    public async Task Game24_campaign_trains_with_the_loss(string loss, string extractor, bool lora)
    {
        var runDir = Path.Combine(Path.GetTempPath(), "selfplay-loss-" + Guid.NewGuid().ToString("N"));
        var import = Path.Combine(Path.GetTempPath(), "selfplay-import-" + Guid.NewGuid().ToString("N") + ".jsonl");
        string[] puzzles = ["4 5 6 10", "1 2 3 4", "2 3 5 12", "1 1 4 6", "3 3 8 8", "2 5 7 9"];
        File.WriteAllLines(import, [.. puzzles.Select(p => JsonSerializer.Serialize(new
        {
            prompt = $"Input: {p}\n", chosen = $"{p.Split(' ')[0]} * {p.Split(' ')[1]} =", rejected = $"{p.Split(' ')[0]} * 13 =",
        })), "{\"prompt\": \"broken\""]);
        try
        {
            var result = await CliRunner.RunAsync(["run", "--config", Path.Combine(CliRunner.RepoRoot, "hocon/campaigns/game24-quick.conf"), .. Game24Warmup.Model,
                "--set", $"warmup.from-checkpoint={warmup.Checkpoint}", "--set", $"learner.loss={loss}", "--set", $"preferences.extractor={extractor}",
                "--set", $"learner.import={import}", "--set", "environment.held-out=10", "--set", "iterations.trees=8", "--set", "learner.epochs=3",
                // LoRA: the reference is the policy's own base (its adapter off), no reference checkpoint is loaded.
                .. (string[])(lora ? ["--set", "learner.lora.rank=8", "--set", "learner.lora.alpha=16", "--set", "learner.lora.target-modules=q,k,v,o,gate,up,down",
                    "--set", "learner.reference=warmup", "--set", "learner.learning-rate=0.005"] : []),
                "--run-dir", runDir]);
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            Assert.Contains($"{import}:7: skipped", result.Stdout + result.Stderr); // the malformed last line, reported with its number

            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json")));
            var row = doc.RootElement.GetProperty("iterations")[1];
            Assert.True(row.GetProperty("pairs").GetInt32() > 0, "the trees yielded no examples");
            var learner = row.GetProperty("learner");
            Assert.Equal(row.GetProperty("pairs").GetInt32() + puzzles.Length, learner.GetProperty("pairs").GetInt32());
            Assert.True(double.IsFinite(row.GetProperty("trainLossFirst").GetDouble()));
            foreach (var key in new[] { "rewardAccuracy", "rewardMargin", "chosenLogProb", "rejectedLogProb", "rankingAccuracyBefore", "rankingAccuracy",
                                        "rankingAccuracyNormalized", "idealizedRankingAccuracy" })
                Assert.True(double.IsFinite(learner.GetProperty(key).GetDouble()), key);
            TrainingChecks.AssertLearned(runDir);
            Assert.Contains($"training {loss} on", File.ReadAllText(Path.Combine(runDir, "selfplay.log")));
            if (lora) AssertOnlyTheAdapterTrained(runDir);
            else if (loss == "dpo") await ExportRoundTrips(runDir);
        }
        finally
        {
            try { Directory.Delete(runDir, true); } catch (IOException) { }
            File.Delete(import);
        }
    }

    /// <summary>v1 is an adapter on v0: v0's weights are v1's base, bit for bit, and the adapter moved off its zero start.</summary>
    static void AssertOnlyTheAdapterTrained(string runDir)
    {
        var v1 = Path.Combine(runDir, "checkpoints", "v1");
        Assert.True(File.Exists(Path.Combine(v1, SelfPlay.Models.Checkpoints.LoraAdapter.ConfigFile)));
        using var adapted = SelfPlay.Models.Checkpoints.Checkpoint.LoadModel(v1);
        using var base0 = SelfPlay.Models.Checkpoints.Checkpoint.LoadModel(Path.Combine(runDir, "checkpoints", "v0"));
        var trained = adapted.state_dict();
        foreach (var (name, weight) in base0.state_dict())
            Assert.True((weight == trained[name]).all().item<bool>(), $"{name} of the base changed");
        Assert.All(trained.Where(kv => kv.Key.Contains("lora_B")), kv => Assert.True(kv.Value.abs().sum().item<float>() > 0, $"{kv.Key} did not train"));
        Assert.Contains("LoRA rank 8 on q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", File.ReadAllText(Path.Combine(runDir, "selfplay.log")));
    }

    /// <summary>The run's trees exported in every format read back as training data with nothing malformed.</summary>
    static async Task ExportRoundTrips(string runDir)
    {
        foreach (var format in new[] { "trl-preference", "trl-stepwise", "ultrainteract" })
        {
            var file = Path.Combine(runDir, $"export-{format}.jsonl");
            var result = await CliRunner.RunAsync("export", "--run-dir", runDir, "--format", format, "--out", file, "--iteration", "1");
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            using var summary = JsonDocument.Parse(result.Stdout);
            var records = summary.RootElement.GetProperty("records").GetInt32();
            Assert.True(records > 0);
            Assert.Equal(records, File.ReadAllLines(file).Length);
            var (examples, errors) = SelfPlay.Core.Preferences.PreferenceFormats.Import(File.ReadAllLines(file), format, file, rejectOnError: true);
            Assert.Empty(errors);
            // Stepwise records pair up again within a prompt: at least the exported pairs come back.
            if (format == "trl-stepwise") Assert.True(examples.Count >= summary.RootElement.GetProperty("examples").GetInt32());
            else Assert.Equal(summary.RootElement.GetProperty("examples").GetInt32(), examples.Count);
        }
        var bad = await CliRunner.RunAsync("export", "--run-dir", runDir, "--format", "csv", "--out", Path.Combine(runDir, "x"));
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--format must be one of", bad.Stderr);
    }
}

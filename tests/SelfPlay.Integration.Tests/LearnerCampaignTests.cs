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

    [Fact]
    public async Task With_a_held_out_slice_the_learner_keeps_its_best_epoch_and_reports_the_held_out_losses()
    {
        var runDir = Path.Combine(Path.GetTempPath(), "selfplay-heldout-" + Guid.NewGuid().ToString("N"));
        var import = Path.Combine(Path.GetTempPath(), "selfplay-heldout-" + Guid.NewGuid().ToString("N") + ".jsonl");
        // Imported pairs are examples of their own (one source each), so the slice has something to hold out besides the few trees.
        File.WriteAllLines(import, Enumerable.Range(1, 12).Select(i => JsonSerializer.Serialize(new
        {
            prompt = $"Input: {i} {i + 1} 3 4\n", chosen = $"{i} * {i + 1} =", rejected = $"{i} * 13 =",
        })));
        try
        {
            var result = await CliRunner.RunAsync(["run", "--config", Path.Combine(CliRunner.RepoRoot, "hocon/campaigns/game24-quick.conf"), .. Game24Warmup.Model,
                "--set", $"warmup.from-checkpoint={warmup.Checkpoint}", "--set", "environment.held-out=10", "--set", "iterations.trees=8",
                "--set", $"learner.import={import}",
                "--set", "learner.epochs=3", "--set", "learner.held-out-share=0.3", "--set", "learner.patience=2", "--run-dir", runDir]);
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json")));
            var heldOut = doc.RootElement.GetProperty("iterations")[1].GetProperty("learner").GetProperty("heldOut");
            var losses = heldOut.GetProperty("losses").EnumerateArray().Select(l => l.GetDouble()).ToList();
            var kept = heldOut.GetProperty("keptEpoch").GetInt32();
            Assert.True(heldOut.GetProperty("examples").GetInt32() > 0);
            Assert.InRange(losses.Count, 3, 4); // before training, then each epoch run (patience 2: at least two)
            Assert.Equal(losses.IndexOf(losses.Min()), kept);
            Assert.Equal(losses.Count < 4, heldOut.GetProperty("stopped").GetBoolean());
            Assert.Matches(@"iteration 1: held-out loss \(\d+ examples\) [\d.]+ -> ", File.ReadAllText(Path.Combine(runDir, "selfplay.log")));
            // The weights kept: v0's when no epoch beat them, else trained ones.
            using var v0 = SelfPlay.Models.Checkpoints.Checkpoint.LoadModel(Path.Combine(runDir, "checkpoints", "v0"));
            using var v1 = SelfPlay.Models.Checkpoints.Checkpoint.LoadModel(Path.Combine(runDir, "checkpoints", "v1"));
            var trained = v1.state_dict();
            var same = v0.state_dict().All(kv => (kv.Value == trained[kv.Key]).all().item<bool>());
            Assert.Equal(kept == 0, same);
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

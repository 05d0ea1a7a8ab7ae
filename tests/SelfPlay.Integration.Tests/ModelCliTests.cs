using System.Text.Json;

namespace SelfPlay.Integration.Tests;

/// <summary>`selfplay model info|score` on the golden Hugging Face checkpoints of the model tests.</summary>
public class ModelCliTests
{
    static string Golden(string name) => Path.Combine(CliRunner.RepoRoot, "tests", "SelfPlay.Models.Tests", "Golden", name);

    [Fact]
    public async Task Info_prints_architecture_and_parameter_count()
    {
        var result = await CliRunner.RunAsync("model", "info", "--checkpoint", Golden("llama-untied-theta5e5-sharded"));
        Assert.Equal(0, result.ExitCode);
        using var json = JsonDocument.Parse(result.Stdout);
        Assert.Equal("LlamaForCausalLM", json.RootElement.GetProperty("architecture").GetString());
        // embed 96x64 + lm_head 96x64 + 2 layers x (q 64x64 + k,v 2x32x64 + o 64x64 + mlp 3x64x96 + 2 norms 64) + norm 64
        Assert.Equal(2 * 96 * 64 + 2 * (64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 64 * 96 + 2 * 64) + 64, json.RootElement.GetProperty("parameters").GetInt64());
        Assert.Equal(2, json.RootElement.GetProperty("weightFiles").GetArrayLength());
    }

    [Fact]
    public async Task Score_by_text_and_by_ids_agree()
    {
        var dir = Path.Combine(Path.GetTempPath(), "selfplay-score-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            foreach (var f in Directory.GetFiles(Golden("qwen2-bias-tied"))) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            var tokenizerDir = Path.Combine(CliRunner.RepoRoot, "tests", "SelfPlay.Models.Tests", "Tokenizer");
            foreach (var f in Directory.GetFiles(tokenizerDir)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));

            var byText = await CliRunner.RunAsync("model", "score", "--checkpoint", dir, "--prompt", "hello", "--completion", " world!");
            Assert.True(byText.ExitCode == 0, byText.Stderr);
            using var text = JsonDocument.Parse(byText.Stdout);
            Assert.Equal([1, 14], text.RootElement.GetProperty("promptIds").EnumerateArray().Select(e => e.GetInt32()));
            Assert.Equal([19, 20], text.RootElement.GetProperty("completionIds").EnumerateArray().Select(e => e.GetInt32()));
            var tokens = text.RootElement.GetProperty("tokens").EnumerateArray().ToList();
            Assert.Equal(" world", tokens[0].GetProperty("text").GetString());
            var sum = text.RootElement.GetProperty("sum").GetDouble();
            Assert.Equal(tokens.Sum(t => t.GetProperty("logprob").GetDouble()), sum, 4);

            var byIds = await CliRunner.RunAsync("model", "score", "--checkpoint", dir, "--prompt-ids", "1,14", "--completion-ids", "19,20");
            Assert.Equal(0, byIds.ExitCode);
            using var ids = JsonDocument.Parse(byIds.Stdout);
            Assert.Equal(sum, ids.RootElement.GetProperty("sum").GetDouble(), 5);
            Assert.True(sum < 0);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public async Task Bad_model_input_gets_one_line_and_the_right_exit_code()
    {
        var both = await CliRunner.RunAsync("model", "score", "--checkpoint", Golden("mistral-untied"), "--prompt", "a", "--prompt-ids", "1", "--completion-ids", "2");
        Assert.Equal(2, both.ExitCode);
        var noTokenizer = await CliRunner.RunAsync("model", "score", "--checkpoint", Golden("mistral-untied"), "--prompt", "a", "--completion", "b");
        Assert.Equal(1, noTokenizer.ExitCode);
        Assert.Contains("has no tokenizer", noTokenizer.Stderr);
        var outside = await CliRunner.RunAsync("model", "score", "--checkpoint", Golden("mistral-untied"), "--prompt-ids", "1", "--completion-ids", "500");
        Assert.Equal(1, outside.ExitCode);
        Assert.Contains("outside the vocabulary", outside.Stderr);
        var missing = await CliRunner.RunAsync("model", "info", "--checkpoint", "/nonexistent/ckpt");
        Assert.Equal(1, missing.ExitCode);
        Assert.Single(missing.Stderr.Trim().Split('\n'));
    }
}

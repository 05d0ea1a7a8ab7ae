using System.Text.Json;

namespace SelfPlay.Integration.Tests;

/// <summary>`selfplay bench inference` in a tiny configuration: one JSON object with a run per concurrency.</summary>
public sealed class BenchInferenceTests
{
    [Fact]
    public async Task Bench_inference_prints_batch_fill_and_tokens_per_second_per_concurrency()
    {
        var result = await CliRunner.RunAsync("bench", "inference", "--config", Path.Combine(CliRunner.RepoRoot, "hocon/campaigns/game24-quick.conf"),
            "--trees", "4", "--concurrency", "1,4", "--set", "search.simulations=3");
        Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
        using var json = JsonDocument.Parse(result.Stdout);
        var root = json.RootElement;
        Assert.Equal("inference", root.GetProperty("bench").GetString());
        var runs = root.GetProperty("runs").EnumerateArray().ToList();
        Assert.Equal([1, 4], runs.Select(r => r.GetProperty("concurrency").GetInt32()));
        Assert.All(runs, r =>
        {
            Assert.Equal(4, r.GetProperty("trees").GetInt32());
            Assert.True(r.GetProperty("tokens").GetInt64() > 0);
            Assert.True(r.GetProperty("tokensPerSecond").GetDouble() > 0);
            Assert.InRange(r.GetProperty("batchFill").GetDouble(), 1e-9, 1.0);
        });
        // One search at a time puts one request (its expansions: 3 samples of one state) in each batch.
        Assert.InRange(runs[0].GetProperty("meanRowsPerBatch").GetDouble(), 1.0, 3.0);
        Assert.True(root.GetProperty("tokensPerSecondRatio").GetDouble() > 0);
    }

    [Fact]
    public async Task Bench_inference_with_serve_searches_the_same_trees_through_the_http_server()
    {
        var result = await CliRunner.RunAsync("bench", "inference", "--config", Path.Combine(CliRunner.RepoRoot, "hocon/campaigns/game24-quick.conf"),
            "--trees", "4", "--concurrency", "1,4", "--set", "search.simulations=3", "--serve");
        Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
        using var json = JsonDocument.Parse(result.Stdout);
        var local = json.RootElement.GetProperty("runs").EnumerateArray().ToList();
        var served = json.RootElement.GetProperty("serve").EnumerateArray().ToList();
        Assert.Equal([1, 4], served.Select(r => r.GetProperty("concurrency").GetInt32()));
        for (var i = 0; i < 2; i++)
        {
            // Same tasks and seeds, the same sampler behind HTTP: the same trees, token for token.
            Assert.Equal(local[i].GetProperty("nodes").GetInt32(), served[i].GetProperty("nodes").GetInt32());
            Assert.Equal(local[i].GetProperty("tokens").GetInt64(), served[i].GetProperty("tokens").GetInt64());
            Assert.True(served[i].GetProperty("requestsPerSecond").GetDouble() > 0);
        }
        Assert.Equal(2, json.RootElement.GetProperty("serveVsLocalTokensPerSecond").GetArrayLength());
    }

    [Fact]
    public async Task Bench_inference_rejects_a_bad_concurrency_list()
    {
        var result = await CliRunner.RunAsync("bench", "inference", "--concurrency", "1,x");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--concurrency must be a comma-separated list of positive integers", result.Stderr);
    }
}

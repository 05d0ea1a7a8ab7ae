using System.Text.Json;
using System.Text.Json.Nodes;
using Akka.Actor;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Config;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Tests.Shared;

namespace SelfPlay.Integration.Tests;

/// <summary>
/// inference.backend = openai against `selfplay serve` (real HTTP): a LoRA campaign of 2 iterations generates on the
/// server, each version's adapter is loaded there under its name, and its greedy held-out episodes are those of the
/// same campaign on the local backend.
/// </summary>
public sealed class OpenAiBackendCampaignTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "selfplay-openai-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task A_lora_campaign_generates_on_the_server_with_each_versions_adapter_and_matches_the_local_backend()
    {
        var source = HfTestCheckpoint.Create(Path.Combine(_dir, "policy"), qwen2: true, hidden: 32, layers: 2);
        // The random policy's trees hold no pairs: imported pairs make each iteration's adapter train.
        var pairs = Path.Combine(_dir, "pairs-in.jsonl");
        File.WriteAllLines(pairs, Enumerable.Range(1, 8).Select(i => JsonSerializer.Serialize(new
            { prompt = $"Input: {i} 3 8 8\n", chosen = $"8 / {i} = {8 / i}", rejected = $"{i} - 3 = {i - 3}" })));
        string[] campaign = ["run", "--config", "hocon/campaigns/game24-quick.conf", "--set", $"policy.checkpoint={source}", "--set", "warmup.share=0",
            "--set", "iterations.count=2", "--set", "iterations.trees=8", "--set", "environment.held-out=12", "--set", "learner.lora.rank=4",
            "--set", "learner.lora.target-modules=q,v,up", "--set", "learner.learning-rate=0.01", "--set", $"learner.import={pairs}"];

        await using var server = CliProcess.Start("serve", "serve", "--checkpoint", source, "--served-model-name", "base", "--port", "0");
        var url = (await server.WaitForAsync(@"on (http://127\.0\.0\.1:\d+)", TimeSpan.FromMinutes(2))).Groups[1].Value;
        var remoteDir = Path.Combine(_dir, "remote");
        var remote = await CliRunner.RunAsync([.. campaign, "--set", "inference.backend=openai", "--set", $"inference.endpoint={url}/v1", "--run-dir", remoteDir]);
        Assert.True(remote.ExitCode == 0, remote.Stdout + remote.Stderr + server.Output);
        var log = File.ReadAllText(Path.Combine(remoteDir, "selfplay.log"));
        Assert.Contains($"policy v0 is base on {url}/v1", log);
        Assert.Contains($"policy v2 is policy-v2 on {url}/v1", log);

        // The server holds the last version's adapter, from the run folder; the one before it was unloaded.
        using var http = new HttpClient();
        var models = JsonNode.Parse(await http.GetStringAsync(url + "/v1/models"))!["data"]!.AsArray().Select(m => m!).ToList();
        Assert.Equal(new[] { "base", "policy-v2" }, models.Select(m => m["id"]!.GetValue<string>()));
        Assert.Equal(Path.GetFullPath(Path.Combine(remoteDir, "checkpoints", "v2")), models[1]["root"]!.GetValue<string>());

        var localDir = Path.Combine(_dir, "local");
        var local = await CliRunner.RunAsync([.. campaign, "--run-dir", localDir]);
        Assert.True(local.ExitCode == 0, local.Stdout + local.Stderr);
        using (var remoteSummary = JsonDocument.Parse(File.ReadAllText(Path.Combine(remoteDir, "summary.json"))))
        using (var localSummary = JsonDocument.Parse(File.ReadAllText(Path.Combine(localDir, "summary.json"))))
        {
            Assert.Equal("completed", remoteSummary.RootElement.GetProperty("status").GetString());
            // Log-prob parity: the server's stored log-probs against the learner's forward, both backends.
            foreach (var summary in new[] { remoteSummary, localSummary })
                for (var i = 1; i <= 2; i++)
                {
                    var parity = summary.RootElement.GetProperty("iterations")[i].GetProperty("logProbParity");
                    Assert.True(parity.GetProperty("tokens").GetInt32() > 0);
                    Assert.InRange(parity.GetProperty("meanAbsDifference").GetDouble(), 0, 1e-4);
                }
            string HeldOut(JsonDocument d) => string.Join(",", d.RootElement.GetProperty("iterations").EnumerateArray().Select(r => r.GetProperty("heldOut").GetProperty("solved").GetInt32()));
            Assert.Equal(HeldOut(localSummary), HeldOut(remoteSummary));
        }
        // Greedy evaluation of every version, episode by episode: the same final states either way.
        for (var v = 0; v <= 2; v++)
            Assert.Equal(File.ReadAllLines(Path.Combine(localDir, "eval", $"v{v}.jsonl")), File.ReadAllLines(Path.Combine(remoteDir, "eval", $"v{v}.jsonl")));

        // The trees hold the server's token ids and log-probs: each step's tokens decode to the text it wrote.
        using var bpe = HfTokenizer.Load(source, Checkpoint.ReadConfig(source));
        var system = ActorSystem.Create("openai-check", SelfPlayHost.AkkaConfig(new PersistenceConfig("sqlite", ""), remoteDir, serilog: false));
        try
        {
            var steps = (await TreeQueries.CampaignTreesAsync(system, "game24-quick")).SelectMany(t => t.Nodes.Skip(1)).Where(n => n.TokenIds.Length > 0).ToList();
            Assert.NotEmpty(steps);
            Assert.All(steps, n =>
            {
                Assert.Equal(n.TokenIds.Length, n.LogProbs.Length);
                Assert.All(n.LogProbs, p => Assert.True(p <= 0 && float.IsFinite(p)));
                Assert.StartsWith(n.Action, bpe.Decode(n.TokenIds));
            });
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public async Task A_server_serving_another_model_stops_the_campaign_on_the_log_prob_check()
    {
        var source = HfTestCheckpoint.Create(Path.Combine(_dir, "policy"), qwen2: true, seed: 1);
        var other = HfTestCheckpoint.Create(Path.Combine(_dir, "other"), qwen2: true, seed: 2); // same shapes, other weights
        await using var server = CliProcess.Start("serve", "serve", "--checkpoint", other, "--served-model-name", "base", "--port", "0");
        var url = (await server.WaitForAsync(@"on (http://127\.0\.0\.1:\d+)", TimeSpan.FromMinutes(2))).Groups[1].Value;
        var runDir = Path.Combine(_dir, "run");
        var result = await CliRunner.RunAsync("run", "--config", "hocon/campaigns/game24-quick.conf", "--set", $"policy.checkpoint={source}", "--set", "warmup.share=0",
            "--set", "learner.lora.rank=4", "--set", "iterations.trees=4", "--set", "environment.held-out=4", "--set", "inference.backend=openai",
            "--set", $"inference.endpoint={url}/v1", "--run-dir", runDir);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Matches(@"log-prob parity: the server's log-probs differ from the learner's by [0-9.]+ on average .* above inference.logprob-tolerance = 0.05",
            result.Stdout + result.Stderr);
        Assert.DoesNotContain("training failed (attempt", File.ReadAllText(Path.Combine(runDir, "selfplay.log"))); // not retried
    }

    [Fact]
    public async Task A_server_that_is_not_there_fails_the_campaign_in_one_line_and_keeps_the_run_folder()
    {
        var source = HfTestCheckpoint.Create(Path.Combine(_dir, "policy"), qwen2: true);
        var runDir = Path.Combine(_dir, "run");
        var result = await CliRunner.RunAsync("run", "--config", "hocon/campaigns/game24-quick.conf", "--set", $"policy.checkpoint={source}", "--set", "warmup.share=0",
            "--set", "learner.lora.rank=4", "--set", "inference.backend=openai", "--set", "inference.endpoint=http://127.0.0.1:9/v1",
            "--set", "inference.max-retries=0", "--set", "inference.timeout-seconds=2", "--run-dir", runDir);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("cannot load policy v0 on http://127.0.0.1:9/v1", result.Stdout + result.Stderr);
        Assert.True(File.Exists(Path.Combine(runDir, "config.conf")));
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}

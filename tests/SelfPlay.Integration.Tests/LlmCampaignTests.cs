using System.Text.Json;
using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Llm;
using SelfPlay.Core.Tests.Llm;

namespace SelfPlay.Integration.Tests;

/// <summary>Quick campaigns whose critic or SPaR judge is a chat model: a fake OpenAI-compatible server on 127.0.0.1 (no real LLM here).</summary>
public class LlmCampaignTests
{
    [Theory]
    // The critic asks the model about non-terminal steps only (terminals keep the verified reward), and the quick
    // campaigns' barely trained policies end Game-of-24 episodes at once: the walk below accepts any step.
    [InlineData("game24-quick.conf", "search.critic=llm", $"environment.type=SelfPlay.Integration.Tests.{nameof(FreeWalkProvider)}, SelfPlay.Integration.Tests")]
    [InlineData("instructions-quick.conf", "search.spar.judge=llm", "environment.type=instructions")]
    public async Task The_configured_llm_critic_or_judge_is_called_by_the_campaign(string campaign, string select, string environment)
    {
        await using var server = new FakeChatCompletionsServer();
        var critic = select.StartsWith("search.critic", StringComparison.Ordinal);
        server.Reply = (_, body) => body["messages"]![0]!["content"]!.GetValue<string>() == LlmCritic.Instructions
            ? FakeReply.Ok("A useful step. Score: 7")
            : FakeReply.Ok("The response follows the instruction.\nFinal Judgement: Yes");
        var runDir = Path.Combine(Path.GetTempPath(), "selfplay-llm-" + Guid.NewGuid().ToString("N"));
        Environment.SetEnvironmentVariable("SELFPLAY_TEST_LLM_KEY", "test-key"); // inherited by the CLI process
        try
        {
            var result = await CliRunner.RunAsync(["run", "--config", $"hocon/campaigns/{campaign}", "--set", select,
                "--set", $"llm.endpoint={server.Endpoint}", "--set", "llm.model=fake-judge", "--set", "llm.api-key-env=SELFPLAY_TEST_LLM_KEY",
                "--set", "iterations.count=1", "--set", "iterations.trees=8", "--set", "environment.held-out=10", "--set", environment, "--run-dir", runDir]);
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json")));
            Assert.Equal("completed", summary.RootElement.GetProperty("status").GetString());
            Assert.Equal(8, summary.RootElement.GetProperty("iterations")[1].GetProperty("trees").GetInt32());

            // Every request went to the model named in the config, with the key, and asked for what was selected.
            var requests = server.Requests.ToList();
            Assert.NotEmpty(requests);
            Assert.All(requests, r =>
            {
                Assert.Equal("fake-judge", r.Body["model"]!.GetValue<string>());
                Assert.Equal("Bearer test-key", r.Authorization);
                Assert.Equal(critic ? LlmCritic.Instructions : LlmJudge.Instructions, r.Body["messages"]![0]!["content"]!.GetValue<string>());
            });
        }
        finally
        {
            if (Directory.Exists(runDir)) Directory.Delete(runDir, true);
        }
    }
}

/// <summary>A test environment that accepts any step: three lines, the last must be the task's number (reward 1).</summary>
public sealed class FreeWalkProvider : IEnvironmentProvider
{
    public string Name => "free-walk";

    public EnvironmentSetup Create(EnvironmentConfig config)
    {
        var tasks = Enumerable.Range(0, config.HeldOut + config.TrainTasks).Select(i => new EnvTask($"walk-{i}", (i % 10).ToString())).ToList();
        return new EnvironmentSetup(new FreeWalk(), tasks[config.HeldOut..], tasks[..config.HeldOut]);
    }

    sealed class FreeWalk : IEnvironment
    {
        const int Steps = 3;
        public string Name => "free-walk";
        public string StepStop => "\n";
        public string InitialState(EnvTask task) => $"walk to {task.Input}:\n";

        public StepOutcome Step(EnvTask task, string state, string action)
        {
            var appended = action.ReplaceLineEndings(" ") + "\n";
            var taken = state.Count(c => c == '\n'); // the header line, then one line per step
            if (taken < Steps) return StepOutcome.Continue(appended);
            var (reward, reason) = Verify(task, state + appended);
            return StepOutcome.End(appended, reward, reason);
        }

        public (double Reward, string Reason) Verify(EnvTask task, string finalState) =>
            finalState.TrimEnd('\n').Split('\n')[^1].Trim() == task.Input ? (1, "arrived") : (0, "lost");

        public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random) => ["left", "right", task.Input];
    }
}

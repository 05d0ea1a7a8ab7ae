using System.Diagnostics;
using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Llm;
using SelfPlay.Core.Search;
using SelfPlay.Samples.Addition;
using SelfPlay.Samples.Instructions;

namespace SelfPlay.Core.Tests.Llm;

public class OpenAiClientTests
{
    static OpenAiClient Client(FakeChatCompletionsServer server, double timeout = 5, int retries = 3, string key = "sk-test")
    {
        Environment.SetEnvironmentVariable("SELFPLAY_TEST_CLIENT_KEY", key);
        return new(new LlmConfig(server.Endpoint, "judge-model", "SELFPLAY_TEST_CLIENT_KEY", timeout, retries), backoff: TimeSpan.FromMilliseconds(20));
    }

    [Fact]
    public async Task It_posts_the_model_messages_and_key_and_returns_the_choices()
    {
        await using var server = new FakeChatCompletionsServer { Reply = (_, _) => FakeReply.Ok("first", "second", "third") };
        using var client = Client(server);
        Assert.Equal("first", await client.CompleteAsync([ChatMessage.System("be brief"), ChatMessage.User("hi")], temperature: 0, maxTokens: 8, seed: 3));
        var (body, auth) = server.Requests.Single();
        Assert.Equal("Bearer sk-test", auth);
        Assert.Equal("judge-model", body["model"]!.GetValue<string>());
        Assert.Equal("system", body["messages"]![0]!["role"]!.GetValue<string>());
        Assert.Equal("hi", body["messages"]![1]!["content"]!.GetValue<string>());
        Assert.Equal(8, body["max_tokens"]!.GetValue<int>());
        Assert.Equal(3, body["seed"]!.GetValue<long>());
        Assert.Equal(["first", "second", "third"], await client.CompleteManyAsync([ChatMessage.User("x")], 3));
    }

    [Fact]
    public async Task A_server_that_returns_fewer_choices_is_asked_again()
    {
        await using var server = new FakeChatCompletionsServer { Reply = (_, _) => FakeReply.Ok("only") with { MaxChoices = 1 } };
        using var client = Client(server);
        Assert.Equal(["only", "only", "only"], await client.CompleteManyAsync([ChatMessage.User("x")], 3));
        Assert.Equal([3, 2, 1], server.Requests.Select(r => r.Body["n"]!.GetValue<int>()));
    }

    [Fact]
    public async Task The_key_comes_only_from_the_named_environment_variable()
    {
        await using var server = new FakeChatCompletionsServer();
        Environment.SetEnvironmentVariable("SELFPLAY_TEST_KEY", "sk-from-env");
        using (var client = new OpenAiClient(new LlmConfig(server.Endpoint, "m", "SELFPLAY_TEST_KEY", 5, 0)))
            await client.CompleteAsync([ChatMessage.User("x")]);
        Assert.Equal("Bearer sk-from-env", server.Requests.Single().Authorization);
        // No default variable: OPENAI_API_KEY is never sent to an endpoint the config did not give it to.
        Environment.SetEnvironmentVariable("OPENAI_API_KEY", "sk-never-sent");
        using (var client = new OpenAiClient(new LlmConfig(server.Endpoint, "m", TimeoutSeconds: 5, MaxRetries: 0)))
            await client.CompleteAsync([ChatMessage.User("x")]);
        Assert.Null(server.Requests.Last().Authorization);
        Environment.SetEnvironmentVariable("OPENAI_API_KEY", null);
    }

    [Fact]
    public void A_key_goes_over_plain_http_only_to_loopback()
    {
        Environment.SetEnvironmentVariable("SELFPLAY_TEST_KEY_HTTP", "sk-x");
        var error = Assert.Throws<ArgumentException>(() => new OpenAiClient(new LlmConfig("http://judge.example.com/v1", "m", "SELFPLAY_TEST_KEY_HTTP"))).Message;
        Assert.Contains("plain http", error);
        using var https = new OpenAiClient(new LlmConfig("https://judge.example.com/v1", "m", "SELFPLAY_TEST_KEY_HTTP"));
        using var loopback = new OpenAiClient(new LlmConfig("http://127.0.0.1:9/v1", "m", "SELFPLAY_TEST_KEY_HTTP"));
        using var keyless = new OpenAiClient(new LlmConfig("http://judge.example.com/v1", "m"));
    }

    [Fact]
    public async Task An_answer_larger_than_the_limit_is_refused()
    {
        await using var server = new FakeChatCompletionsServer { Reply = (_, _) => FakeReply.Ok(new string('x', OpenAiClient.MaxResponseBytes)) };
        using var client = Client(server, retries: 0);
        Assert.Contains("larger than", (await Assert.ThrowsAsync<LlmException>(() => client.CompleteAsync([ChatMessage.User("x")]))).Message);
    }

    [Fact]
    public async Task Server_errors_and_rate_limits_are_retried_with_backoff()
    {
        await using var server = new FakeChatCompletionsServer
        {
            Reply = (attempt, _) => attempt switch
            {
                1 => FakeReply.Error(503, "overloaded"),
                2 => FakeReply.Error(429, "slow down", retryAfter: 1),
                _ => FakeReply.Ok("done"),
            },
        };
        using var client = Client(server);
        var clock = Stopwatch.StartNew();
        Assert.Equal("done", await client.CompleteAsync([ChatMessage.User("x")]));
        Assert.Equal(3, server.Requests.Count);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.9), "Retry-After was not honoured");
    }

    [Fact]
    public async Task Refusals_fail_at_once_and_exhausted_retries_fail_with_one_line()
    {
        await using var server = new FakeChatCompletionsServer { Reply = (_, _) => FakeReply.Error(401, "bad key") };
        using var client = Client(server, retries: 3);
        var refused = await Assert.ThrowsAsync<LlmException>(() => client.CompleteAsync([ChatMessage.User("x")]));
        Assert.EndsWith("HTTP 401: bad key", refused.Message);
        Assert.Single(server.Requests);

        server.Reply = (_, _) => FakeReply.Error(500, "broken");
        var exhausted = await Assert.ThrowsAsync<LlmException>(() => client.CompleteAsync([ChatMessage.User("x")]));
        Assert.EndsWith("HTTP 500: broken (after 4 attempts)", exhausted.Message);

        server.Reply = (_, _) => new FakeReply(200, [], RawBody: "<html>not json</html>");
        Assert.StartsWith("chat completions: the answer is not a chat completion", (await Assert.ThrowsAsync<LlmException>(() => client.CompleteAsync([ChatMessage.User("x")]))).Message);
    }

    [Fact]
    public async Task A_slow_server_times_out_per_attempt_and_an_absent_one_cannot_be_reached()
    {
        await using var server = new FakeChatCompletionsServer { Reply = (_, _) => FakeReply.Ok("late") with { DelaySeconds = 3 } };
        using var slow = Client(server, timeout: 0.3, retries: 1);
        Assert.EndsWith("no answer within 0.3 s (after 2 attempts)", (await Assert.ThrowsAsync<LlmException>(() => slow.CompleteAsync([ChatMessage.User("x")]))).Message);

        using var absent = new OpenAiClient(new LlmConfig("http://127.0.0.1:9/v1", "m", "", 2, 1), TimeSpan.FromMilliseconds(10));
        Assert.Contains("cannot connect", (await Assert.ThrowsAsync<LlmException>(() => absent.CompleteAsync([ChatMessage.User("x")]))).Message);
        Assert.Contains("llm.endpoint and llm.model", Assert.Throws<ArgumentException>(() => new OpenAiClient(new LlmConfig())).Message);
        Assert.Contains("must be an http(s) URL", Assert.Throws<ArgumentException>(() => new OpenAiClient(new LlmConfig("ftp://x", "m"))).Message);
    }

    [Fact]
    public async Task As_spar_judge_the_last_final_judgement_line_counts()
    {
        await using var server = new FakeChatCompletionsServer
        {
            Reply = (_, _) => FakeReply.Ok("Too long. Final Judgement: No", "Fine.\nFinal Judgement: Yes", "No idea",
                "Earlier I said Final Judgement: No, but on reflection\nFinal Judgement: **Yes**"),
        };
        using var client = Client(server);
        var judge = new LlmJudge(client, new AdditionEnvironment());
        var votes = await judge.JudgeAsync(new EnvTask("t", "1+2"), "3\n", 4, seed: 1);
        Assert.Equal([Verdict.No, Verdict.Yes, Verdict.Unparsable, Verdict.Yes], votes.Select(v => v.Verdict));
        Assert.Equal("Too long.", votes[0].Critique);
        Assert.Equal(new Vote(2, 1, 1, "Fine."), Vote.Tally(votes));
        Assert.Contains("1+2=", server.Requests.Single().Body["messages"]![1]!["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task As_critic_it_scores_steps_and_leaves_terminals_to_the_verifier()
    {
        await using var server = new FakeChatCompletionsServer { Reply = (_, _) => FakeReply.Ok("Score: 7") };
        using var client = Client(server);
        var critic = new LlmCritic(client, new AdditionEnvironment());
        var task = new EnvTask("t", "1+2");
        var values = await critic.EvaluateAsync(task, [
            new NodeToScore("1+2=", "1+2=3\n", StepOutcome.Continue("3\n")),
            new NodeToScore("1+2=", "1+2=3\n", StepOutcome.End("3\n", 1, "correct")),
            new NodeToScore("1+2=", "1+2=4\n", StepOutcome.End("4\n", 1, "forged")),
        ]);
        Assert.Equal([0.7, 1, 0], values);
        Assert.Single(server.Requests);
        Assert.Equal(0, LlmCritic.ParseScore("I cannot say"));
    }

    [Fact]
    public async Task As_critic_it_rates_the_open_steps_of_a_call_concurrently()
    {
        // Each request waits until all four have arrived: only concurrent requests get through without a time-out.
        var arrived = 0;
        var timedOut = false;
        using var all = new ManualResetEventSlim(false);
        await using var server = new FakeChatCompletionsServer
        {
            Reply = (_, _) =>
            {
                if (Interlocked.Increment(ref arrived) >= 4) all.Set();
                else if (!all.Wait(TimeSpan.FromSeconds(20))) timedOut = true;
                return FakeReply.Ok("Score: 5");
            },
        };
        using var client = Client(server, timeout: 30);
        var critic = new LlmCritic(client, new AdditionEnvironment());
        var open = Enumerable.Range(0, 4).Select(i => new NodeToScore("1+2=", $"1+2={i}\n", StepOutcome.Continue($"{i}\n"))).ToList();
        var values = await critic.EvaluateAsync(new EnvTask("t", "1+2"), open);
        Assert.Equal([0.5, 0.5, 0.5, 0.5], values);
        Assert.False(timedOut, "the critic's requests were sent one after another");
        Assert.Equal(4, server.Requests.Count);
    }

    [Fact]
    public async Task As_topic_judge_of_the_instructions_environment()
    {
        await using var server = new FakeChatCompletionsServer { Reply = (_, body) => FakeReply.Ok(
            body["messages"]![1]!["content"]!.GetValue<string>().Contains("dogs") ? "No" : "Yes") };
        var setup = new InstructionsProvider().Create(new EnvironmentConfig("instructions", "operation", 5, 1, 1, 0.2, TrainTasks: 5,
            Settings: new Dictionary<string, string> { ["judge"] = "llm" }, Llm: new LlmConfig(server.Endpoint, "judge-model", MaxRetries: 0)));
        var task = new EnvTask("t", "cats|max:4|lower");
        Assert.Equal(1, setup.Environment.Step(task, "", "cats purr").Reward);
        Assert.Equal("off topic: No", setup.Environment.Step(task, "", "dogs bark").Reason);
    }
}

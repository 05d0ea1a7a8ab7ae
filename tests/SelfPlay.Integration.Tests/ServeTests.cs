using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Llama;
using SelfPlay.Tests.Shared;
using TorchSharp;

namespace SelfPlay.Integration.Tests;

/// <summary>
/// `selfplay serve` on a random Qwen2-layout checkpoint with a ChatML template and a LoRA adapter, started once on a
/// free port of 127.0.0.1 with an API key; the tests talk to it over real HTTP.
/// </summary>
public sealed class ServeFixture : IAsyncLifetime
{
    public const string Key = "test-key-7f3a";
    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "selfplay-serve-" + Guid.NewGuid().ToString("N"));
    public string Base => Path.Combine(Dir, "base");
    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromMinutes(2) };
    public string Url { get; private set; } = "";
    CliProcess? _server;

    public async Task InitializeAsync()
    {
        HfTestCheckpoint.Create(Base, qwen2: true, hidden: 32, layers: 2);
        var config = Path.Combine(Base, "tokenizer_config.json");
        var tokenizerConfig = JsonNode.Parse(File.ReadAllText(config))!.AsObject();
        tokenizerConfig["chat_template"] = "{% for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endfor %}";
        File.WriteAllText(config, tokenizerConfig.ToJsonString());
        CreateAdapter(Base, Path.Combine(Dir, "adapter-1"), seed: 1);
        CreateAdapter(Base, Path.Combine(Dir, "adapter-2"), seed: 2);
        _server = CliProcess.Start("serve", new Dictionary<string, string> { ["SELFPLAY_TEST_KEY"] = Key }, "serve", "--checkpoint", Base, "--served-model-name", "tiny",
            "--adapter", $"policy-v1={Path.Combine(Dir, "adapter-1")}", "--port", "0", "--api-key-env", "SELFPLAY_TEST_KEY");
        var match = await _server.WaitForAsync(@"on (http://127\.0\.0\.1:\d+)", TimeSpan.FromMinutes(2));
        Url = match.Groups[1].Value;
        Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
    }

    /// <summary>A LoRA adapter in PEFT's layout whose B is random (PEFT starts it at 0, which would change nothing).</summary>
    static void CreateAdapter(string baseDir, string dir, long seed)
    {
        Directory.CreateDirectory(dir);
        using var model = Checkpoint.LoadModel(baseDir);
        model.AttachLora(new LoraSettings(4, 8, 0, ["q", "v"]), seed);
        using (torch.no_grad())
        {
            torch.manual_seed(seed);
            foreach (var (_, layer) in model.Projections().Where(p => p.Layer.HasAdapter)) layer.LoraB!.weight!.normal_(0, 0.5);
        }
        LoraAdapter.Save(model, dir, baseDir);
    }

    public string Output => _server?.Output ?? "";

    public async Task<(HttpStatusCode Status, JsonObject Body)> PostAsync(string path, string json)
    {
        using var response = await Http.PostAsync(Url + path, new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length > 0 && text[0] == '{' ? JsonNode.Parse(text)!.AsObject() : new JsonObject { ["text"] = text });
    }

    public async Task<JsonObject> OkAsync(string path, JsonObject body)
    {
        var (status, answer) = await PostAsync(path, body.ToJsonString());
        Assert.True(status == HttpStatusCode.OK, $"{status}: {answer.ToJsonString()}\n{Output}");
        return answer;
    }

    /// <summary>The data lines of a server-sent event stream, [DONE] included.</summary>
    public async Task<List<string>> StreamAsync(string path, JsonObject body)
    {
        using var response = await Http.PostAsync(Url + path, new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var text = await response.Content.ReadAsStringAsync();
        return [.. text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Select(e => e.StartsWith("data: ") ? e["data: ".Length..] : throw new Xunit.Sdk.XunitException($"not an SSE data line: {e}"))];
    }

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        Http.Dispose();
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }
}

public sealed class ServeTests(ServeFixture server) : IClassFixture<ServeFixture>
{
    static JsonObject Completion(string prompt, int maxTokens = 8, double temperature = 0) =>
        new() { ["model"] = "tiny", ["prompt"] = prompt, ["max_tokens"] = maxTokens, ["temperature"] = temperature };

    [Fact]
    public async Task Models_lists_the_base_and_its_adapters()
    {
        var text = await server.Http.GetStringAsync(server.Url + "/v1/models");
        var body = JsonNode.Parse(text)!.AsObject();
        Assert.Equal("list", body["object"]!.GetValue<string>());
        var models = body["data"]!.AsArray().Select(m => m!.AsObject()).ToList();
        Assert.Equal(new[] { "tiny", "policy-v1" }, models.Select(m => m["id"]!.GetValue<string>()));
        Assert.All(models, m =>
        {
            Assert.Equal("model", m["object"]!.GetValue<string>());
            Assert.True(m["created"]!.GetValue<long>() > 1_700_000_000);
            Assert.Equal("selfplay", m["owned_by"]!.GetValue<string>());
        });
        Assert.Null(models[0]["parent"]);
        Assert.Equal("tiny", models[1]["parent"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_completion_has_the_fields_of_the_api_reference_and_greedy_is_deterministic()
    {
        var request = Completion("Input: 4 6 8 2\n");
        request["logprobs"] = 3;
        var body = await server.OkAsync("/v1/completions", request);
        Assert.StartsWith("cmpl-", body["id"]!.GetValue<string>());
        Assert.Equal("text_completion", body["object"]!.GetValue<string>());
        Assert.True(body["created"]!.GetValue<long>() > 1_700_000_000);
        Assert.Equal("tiny", body["model"]!.GetValue<string>());
        var choice = body["choices"]!.AsArray().Single()!.AsObject();
        Assert.Equal(0, choice["index"]!.GetValue<int>());
        Assert.Contains(choice["finish_reason"]!.GetValue<string>(), new[] { "stop", "length" });
        var usage = body["usage"]!.AsObject();
        var promptTokens = usage["prompt_tokens"]!.GetValue<int>();
        Assert.Equal("Input: 4 6 8 2\n".Length - 4, promptTokens); // "Input" is one token; no BOS in Qwen2's layout
        var completionTokens = usage["completion_tokens"]!.GetValue<int>();
        Assert.InRange(completionTokens, 1, 8);
        Assert.Equal(promptTokens + completionTokens, usage["total_tokens"]!.GetValue<int>());

        var logProbs = choice["logprobs"]!.AsObject();
        var tokens = logProbs["tokens"]!.AsArray();
        var values = logProbs["token_logprobs"]!.AsArray().Select(v => v!.GetValue<double>()).ToList();
        var tops = logProbs["top_logprobs"]!.AsArray();
        var offsets = logProbs["text_offset"]!.AsArray().Select(v => v!.GetValue<int>()).ToList();
        Assert.Equal(tokens.Count, values.Count);
        Assert.Equal(tokens.Count, tops.Count);
        Assert.Equal(tokens.Count, offsets.Count);
        Assert.Equal(offsets.Order(), offsets);
        Assert.Equal(0, offsets[0]);
        for (var t = 0; t < values.Count; t++)
        {
            var top = tops[t]!.AsObject().Select(kv => kv.Value!.GetValue<double>()).ToList();
            Assert.InRange(top.Count, 1, 3);
            Assert.True(values[t] <= 0);
            Assert.Equal(top.Max(), values[t], 5); // greedy: the chosen token is the likeliest
        }
        var again = await server.OkAsync("/v1/completions", Completion("Input: 4 6 8 2\n"));
        Assert.Equal(choice["text"]!.GetValue<string>(), again["choices"]![0]!["text"]!.GetValue<string>());
    }

    [Fact]
    public async Task Echo_scores_the_prompt_with_the_log_probs_generation_reported()
    {
        // Generate with token ids, then score prompt + completion with echo and max_tokens 0: the same log-probs.
        var request = new JsonObject { ["model"] = "tiny", ["prompt"] = new JsonArray(60, 61, 62, 63), ["max_tokens"] = 6, ["temperature"] = 1.0,
            ["seed"] = 3, ["logprobs"] = 0, ["return_tokens_as_token_ids"] = true };
        var generated = (await server.OkAsync("/v1/completions", request))["choices"]![0]!["logprobs"]!;
        var ids = generated["tokens"]!.AsArray().Select(t => int.Parse(t!.GetValue<string>()["token_id:".Length..])).ToList();
        var sampled = generated["token_logprobs"]!.AsArray().Select(v => v!.GetValue<double>()).ToList();
        Assert.NotEmpty(ids);

        var score = new JsonObject { ["model"] = "tiny", ["prompt"] = new JsonArray([.. new[] { 60, 61, 62, 63 }.Concat(ids).Select(i => (JsonNode)i)]),
            ["max_tokens"] = 0, ["echo"] = true, ["logprobs"] = 1, ["return_tokens_as_token_ids"] = true };
        var echoed = (await server.OkAsync("/v1/completions", score))["choices"]![0]!["logprobs"]!;
        var values = echoed["token_logprobs"]!.AsArray();
        Assert.Equal(4 + ids.Count, values.Count);
        Assert.Null(values[0]);
        Assert.Null(echoed["top_logprobs"]![0]);
        for (var t = 0; t < ids.Count; t++) Assert.Equal(sampled[t], values[4 + t]!.GetValue<double>(), 4);
        Assert.Equal($"token_id:{ids[0]}", echoed["tokens"]![4]!.GetValue<string>());
    }

    [Fact]
    public async Task Samples_with_a_seed_repeat_and_prompts_times_n_give_indexed_choices()
    {
        var request = new JsonObject { ["model"] = "tiny", ["prompt"] = new JsonArray("Input: 1 2 3 4\n", "Input: 5 5 5 1\n"), ["max_tokens"] = 6, ["n"] = 3,
            ["temperature"] = 1.0, ["seed"] = 11 };
        var first = await server.OkAsync("/v1/completions", request);
        var second = await server.OkAsync("/v1/completions", request);
        var choices = first["choices"]!.AsArray();
        Assert.Equal(new[] { 0, 1, 2, 3, 4, 5 }, choices.Select(c => c!["index"]!.GetValue<int>()));
        Assert.Equal(choices.Select(c => c!["text"]!.GetValue<string>()), second["choices"]!.AsArray().Select(c => c!["text"]!.GetValue<string>()));
        Assert.True(choices.Select(c => c!["text"]!.GetValue<string>()).Distinct().Count() > 1, "six samples at temperature 1 were all the same");
    }

    [Fact]
    public async Task A_stop_string_ends_the_text_before_it()
    {
        var full = (await server.OkAsync("/v1/completions", Completion("Input: 7 7 3 3\n", 12)))["choices"]![0]!["text"]!.GetValue<string>();
        Assert.True(full.Length >= 3, $"'{full}'");
        var stop = full.Substring(2, 1);
        var request = Completion("Input: 7 7 3 3\n", 12);
        request["stop"] = new JsonArray(stop, "never-written");
        var choice = (await server.OkAsync("/v1/completions", request))["choices"]![0]!;
        Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], choice["text"]!.GetValue<string>());
        Assert.Equal("stop", choice["finish_reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task Concurrent_requests_get_what_each_would_get_alone()
    {
        var prompts = Enumerable.Range(1, 8).Select(i => $"Input: {i} {i + 1} 8 8\n").ToList();
        var alone = new List<string>();
        foreach (var p in prompts) alone.Add((await server.OkAsync("/v1/completions", Completion(p)))["choices"]![0]!["text"]!.GetValue<string>());
        var together = await Task.WhenAll(prompts.Select(p => server.OkAsync("/v1/completions", Completion(p))));
        Assert.Equal(alone, together.Select(b => b["choices"]![0]!["text"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_chat_completion_renders_the_template_and_reports_logprobs_per_token()
    {
        var request = new JsonObject
        {
            ["model"] = "tiny", ["max_tokens"] = 6, ["temperature"] = 0, ["logprobs"] = true, ["top_logprobs"] = 2,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "system", ["content"] = "Be brief." }, new JsonObject { ["role"] = "user", ["content"] = "Input: 2 3 4 6" }),
        };
        var body = await server.OkAsync("/v1/chat/completions", request);
        Assert.StartsWith("chatcmpl-", body["id"]!.GetValue<string>());
        Assert.Equal("chat.completion", body["object"]!.GetValue<string>());
        var choice = body["choices"]![0]!.AsObject();
        Assert.Equal("assistant", choice["message"]!["role"]!.GetValue<string>());
        var content = choice["message"]!["content"]!.GetValue<string>();
        var entries = choice["logprobs"]!["content"]!.AsArray();
        Assert.Equal(content, string.Concat(entries.Select(e => e!["token"]!.GetValue<string>())));
        Assert.All(entries, e =>
        {
            Assert.Equal(Encoding.UTF8.GetBytes(e!["token"]!.GetValue<string>()), e["bytes"]!.AsArray().Select(b => (byte)b!.GetValue<int>()));
            Assert.Equal(2, e["top_logprobs"]!.AsArray().Count);
        });
        // The prompt is the ChatML rendering: two turns plus the assistant's opening, in tokens.
        Assert.True(body["usage"]!["prompt_tokens"]!.GetValue<int>() > "Be brief.Input: 2 3 4 6".Length / 2);
    }

    [Fact]
    public async Task A_streamed_completion_sends_the_same_text_in_chunks_then_usage_and_done()
    {
        var plain = (await server.OkAsync("/v1/completions", Completion("Input: 3 3 8 8\n", 10)))["choices"]![0]!.AsObject();
        var request = Completion("Input: 3 3 8 8\n", 10);
        request["stream"] = true;
        request["stream_options"] = new JsonObject { ["include_usage"] = true };
        var events = await server.StreamAsync("/v1/completions", request);
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e)!.AsObject()).ToList();
        Assert.All(chunks, c => Assert.Equal("text_completion", c["object"]!.GetValue<string>()));
        Assert.Single(chunks.Select(c => c["id"]!.GetValue<string>()).Distinct());
        var usage = chunks[^1];
        Assert.Empty(usage["choices"]!.AsArray());
        Assert.True(usage["usage"]!["completion_tokens"]!.GetValue<int>() > 0);
        var parts = chunks[..^1].Select(c => c["choices"]![0]!.AsObject()).ToList();
        Assert.True(parts.Count >= 2, $"{parts.Count} chunks");
        Assert.Equal(plain["text"]!.GetValue<string>(), string.Concat(parts.Select(p => p["text"]!.GetValue<string>())));
        Assert.All(parts[..^1], p => Assert.Null(p["finish_reason"]));
        Assert.Equal(plain["finish_reason"]!.GetValue<string>(), parts[^1]["finish_reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_streamed_chat_opens_with_the_role_and_its_deltas_make_the_message()
    {
        var messages = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Input: 1 1 4 6" });
        var plain = await server.OkAsync("/v1/chat/completions", new JsonObject { ["model"] = "tiny", ["messages"] = messages.DeepClone(), ["max_tokens"] = 8, ["temperature"] = 0 });
        var events = await server.StreamAsync("/v1/chat/completions",
            new JsonObject { ["model"] = "tiny", ["messages"] = messages.DeepClone(), ["max_tokens"] = 8, ["temperature"] = 0, ["stream"] = true });
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e)!.AsObject()).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c["object"]!.GetValue<string>()));
        Assert.Equal("assistant", chunks[0]["choices"]![0]!["delta"]!["role"]!.GetValue<string>());
        var content = string.Concat(chunks.Select(c => c["choices"]![0]!["delta"]!["content"]?.GetValue<string>() ?? ""));
        Assert.Equal(plain["choices"]![0]!["message"]!["content"]!.GetValue<string>(), content);
        Assert.NotNull(chunks[^1]["choices"]![0]!["finish_reason"]);
    }

    [Theory]
    [InlineData("{\"model\": \"tiny\", \"prompt\": ", 400, null)]
    [InlineData("{\"model\": \"nobody\", \"prompt\": \"x\"}", 404, "model")]
    [InlineData("{\"model\": \"tiny\", \"prompt\": \"x\", \"max_tokens\": -1}", 400, "max_tokens")]
    [InlineData("{\"model\": \"tiny\", \"prompt\": \"x\", \"temperature\": 3}", 400, "temperature")]
    [InlineData("{\"model\": \"tiny\", \"prompt\": \"x\", \"frequency_penalty\": 0.5}", 400, "frequency_penalty")]
    [InlineData("{\"model\": \"tiny\", \"prompt\": \"x\", \"max_tokens\": 100000}", 400, "prompt")]
    [InlineData("{\"model\": \"tiny\", \"prompt\": \"x\", \"tempreature\": 0}", 400, "tempreature")]
    [InlineData("{\"model\": \"tiny\", \"prompt\": [1, -4]}", 400, "prompt")]
    public async Task Bad_requests_get_the_openai_error_body(string json, int status, string? param)
    {
        var (code, body) = await server.PostAsync("/v1/completions", json);
        Assert.Equal(status, (int)code);
        var error = body["error"]!.AsObject();
        Assert.Equal(new[] { "message", "type", "param", "code" }, error.Select(kv => kv.Key));
        Assert.False(string.IsNullOrWhiteSpace(error["message"]!.GetValue<string>()));
        Assert.Equal(param, error["param"]?.GetValue<string>());
        if (status == 404) Assert.Equal("model_not_found", error["code"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_request_without_the_key_is_refused()
    {
        using var anonymous = new HttpClient();
        using var response = await anonymous.PostAsync(server.Url + "/v1/completions", new StringContent(Completion("x").ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("invalid_api_key", JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["code"]!.GetValue<string>());
        Assert.DoesNotContain(ServeFixture.Key, server.Output);
    }

    [Fact]
    public async Task Adapters_change_the_answer_and_load_and_unload_by_name()
    {
        async Task<List<double>> Scores(string model)
        {
            var body = await server.OkAsync("/v1/completions", new JsonObject { ["model"] = model, ["prompt"] = "Input: 4 4 6 6\nAnswer", ["max_tokens"] = 0, ["echo"] = true, ["logprobs"] = 0 });
            return [.. body["choices"]![0]!["logprobs"]!["token_logprobs"]!.AsArray().Skip(1).Select(v => v!.GetValue<double>())];
        }
        var base_ = await Scores("tiny");
        var v1 = await Scores("policy-v1");
        Assert.True(base_.Zip(v1, (x, y) => Math.Abs(x - y)).Max() > 1e-3, "the adapter changed no log-prob");

        var load = new JsonObject { ["lora_name"] = "policy-v2", ["lora_path"] = Path.Combine(server.Dir, "adapter-2") };
        var (status, _) = await server.PostAsync("/v1/load_lora_adapter", load.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("policy-v2", await server.Http.GetStringAsync(server.Url + "/v1/models"));
        var v2 = await Scores("policy-v2");
        Assert.True(v1.Zip(v2, (x, y) => Math.Abs(x - y)).Max() > 1e-3, "two adapters gave the same log-probs");
        Assert.Equal(HttpStatusCode.BadRequest, (await server.PostAsync("/v1/load_lora_adapter", load.ToJsonString())).Status); // already loaded

        Assert.Equal(HttpStatusCode.OK, (await server.PostAsync("/v1/unload_lora_adapter", "{\"lora_name\": \"policy-v2\"}")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await server.PostAsync("/v1/completions", "{\"model\": \"policy-v2\", \"prompt\": \"x\"}")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await server.PostAsync("/v1/unload_lora_adapter", "{\"lora_name\": \"policy-v2\"}")).Status);
        var missing = await server.PostAsync("/v1/load_lora_adapter", new JsonObject { ["lora_name"] = "x", ["lora_path"] = Path.Combine(server.Dir, "nothing") }.ToJsonString());
        Assert.Equal(HttpStatusCode.BadRequest, missing.Status);
        Assert.Equal("lora_path", missing.Body["error"]!["param"]!.GetValue<string>());
        var wrong = await server.PostAsync("/v1/load_lora_adapter", new JsonObject { ["lora_name"] = "x", ["lora_path"] = server.Base }.ToJsonString());
        Assert.Equal(HttpStatusCode.BadRequest, wrong.Status); // a base checkpoint is not an adapter
    }
}

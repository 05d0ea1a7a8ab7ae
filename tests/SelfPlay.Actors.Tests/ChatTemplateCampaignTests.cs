using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Configuration;
using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Preferences;
using SelfPlay.Core.Training;
using SelfPlay.Models.Generation;
using SelfPlay.Models.Tokenization;
using SelfPlay.Samples.Game24;
using SelfPlay.Tests.Shared;

namespace SelfPlay.Actors.Tests;

/// <summary>policy.chat-template: the environment's prompt as the user turn, the steps as the assistant turn.</summary>
public sealed class ChatTemplateCampaignTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "selfplay-chat-" + Guid.NewGuid().ToString("N"));
    static readonly EnvTask Task = new("t", "4 5 6 10");

    CampaignContext Context(string template, params string[] settings)
    {
        var checkpoint = HfTestCheckpoint.Create(Path.Combine(_dir, "qwen-" + template + settings.Length), qwen2: true);
        var config = ConfigLoader.Parse(ConfigLoader.Build(null, [$"policy.checkpoint={checkpoint}", $"policy.chat-template={template}", .. settings]));
        return new CampaignContext(config, new EnvironmentSetup(new Game24Environment(), [Task], [Task]), _dir);
    }

    [Fact]
    public void With_chatml_the_policy_sees_the_prompt_as_the_user_turn_and_the_environment_its_own_text()
    {
        var context = Context("chatml");
        var env = context.Setup.Environment;
        var plain = new Game24Environment().InitialState(Task);
        Assert.Equal($"<|im_start|>user\n{plain}<|im_end|>\n<|im_start|>assistant\n", env.InitialState(Task));

        // A reference solution played through the formatted environment is verified as solved: the environment
        // never sees the template.
        var state = env.InitialState(Task);
        StepOutcome? last = null;
        foreach (var action in env.ReferenceActions(Task, new Random(1))!)
        {
            last = env.Step(Task, state, action);
            state += last.Appended;
        }
        Assert.True(last!.IsTerminal);
        Assert.Equal(1.0, last.Reward);
        Assert.Equal(1.0, env.Verify(Task, state).Reward);
        // What the environment wrote after each step (its arithmetic) is a tool turn between assistant turns; the
        // environment reads back exactly its own text.
        var formatted = (PromptFormattedEnvironment)env;
        Assert.Equal(3, CountOf(state, "<|im_end|>\n<|im_start|>tool\n"));
        Assert.Equal(3, CountOf(state, "<|im_end|>\n<|im_start|>assistant\n") - 1);
        var own = formatted.Unformat(Task, state);
        Assert.DoesNotContain("<|im_", own);
        Assert.Equal(1.0, new Game24Environment().Verify(Task, own).Reward);
        var turns = ChatTemplate.ChatMl.Parse(state);
        Assert.Equal("user,assistant,tool,assistant,tool,assistant,tool", string.Join(",", turns.Select(m => m.Role)));
        Assert.Equal(plain, turns[0].Content);

        // The markers are single special tokens, and a warm-up trace trains only on the assistant turn's steps.
        var tokenizer = context.Tokenizer;
        var imStart = HfTestCheckpoint.Vocabulary()[HfTestCheckpoint.ImStart];
        var trace = WarmupTraces.Build(env, Task, new Random(1))!;
        var sequence = PolicyEncoding.Trace(tokenizer, trace);
        var prompt = tokenizer.EncodePrompt(env.InitialState(Task));
        Assert.Equal(2, prompt.Count(id => id == imStart));
        Assert.Equal(prompt, sequence.Ids[..prompt.Length]);
        Assert.All(sequence.Scored[..prompt.Length], scored => Assert.False(scored));
        Assert.Contains(true, sequence.Scored[prompt.Length..]);
        // No token of a tool turn is trained on: the scored text is the policy's parts of the steps only.
        var scoredText = tokenizer.Decode([.. sequence.Ids.Where((_, i) => sequence.Scored[i])]);
        Assert.Equal(string.Concat(trace.Where(t => t.Scored).Select(t => t.Text)), scoredText);
        Assert.DoesNotContain("<|im_", scoredText);
        Assert.DoesNotContain("left:", scoredText);
    }

    [Fact]
    public void The_conversational_export_of_a_chat_campaign_holds_its_turns_as_messages()
    {
        // A solved and a failed episode of the formatted environment, as the pair an extractor makes of them.
        var config = Context("chatml").Config;
        var env = Context("chatml").Setup.Environment;
        var template = CampaignContext.ChatFormatOf(config)!;
        Candidate Played(IEnumerable<string> actions, double reward)
        {
            var state = env.InitialState(Task);
            var steps = new List<CompletionStep>();
            foreach (var action in actions)
            {
                var outcome = env.Step(Task, state, action);
                steps.Add(CompletionStep.FromText(outcome.Appended));
                state += outcome.Appended;
                if (outcome.IsTerminal) break;
            }
            return new Candidate(steps, reward);
        }
        var solved = env.ReferenceActions(Task, new Random(1))!;
        var pair = PreferenceExample.Pair("t", env.InitialState(Task), Played(solved, 1), Played([solved[0], "4 + 4"], 0));
        var line = Assert.Single(PreferenceFormats.Export([pair], "trl-conversational", turns: text => [.. template.Parse(text).Select(m => (m.Role, m.Content))]));
        var o = System.Text.Json.Nodes.JsonNode.Parse(line)!.AsObject();
        string Roles(string key) => string.Join(",", o[key]!.AsArray().Select(t => t!["role"]!.GetValue<string>()));
        Assert.Equal("user", Roles("prompt"));
        Assert.Equal(new Game24Environment().InitialState(Task), o["prompt"]![0]!["content"]!.GetValue<string>());
        Assert.Equal("assistant,tool,assistant,tool,assistant,tool", Roles("chosen"));
        Assert.StartsWith("assistant,tool,assistant", Roles("rejected"));
        Assert.All(new[] { "prompt", "chosen", "rejected" }.SelectMany(k => o[k]!.AsArray()),
            t => Assert.DoesNotContain("<|im_", t!["content"]!.GetValue<string>()));
    }

    static int CountOf(string text, string part) => (text.Length - text.Replace(part, "").Length) / part.Length;

    [Fact]
    public void Environment_turn_assistant_keeps_the_environments_text_inside_the_assistant_turn()
    {
        var env = Context("chatml", "policy.environment-turn=assistant").Setup.Environment;
        var state = env.InitialState(Task);
        var step = env.Step(Task, state, env.ReferenceActions(Task, new Random(1))![0]);
        Assert.DoesNotContain("<|im_", step.Appended);
        Assert.Contains("(left:", step.Appended);
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(ConfigLoader.Build(null, ["policy.environment-turn=user"])));
        Assert.Contains("policy.environment-turn must be tool or assistant", e.Message);
    }

    [Fact]
    public void Auto_without_a_chat_template_and_none_leave_the_prompt_plain()
    {
        Assert.IsType<Game24Environment>(Context("auto").Setup.Environment);
        Assert.IsType<Game24Environment>(Context("none").Setup.Environment);
    }

    [Fact]
    public void A_template_the_tokenizer_cannot_render_is_a_one_line_error()
    {
        var e = Assert.Throws<ConfigException>(() => Context("llama3"));
        Assert.Contains("the tokenizer has no <|start_header_id|> token", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        var charModel = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(ConfigLoader.Build(null, ["policy.chat-template=chatml"])));
        Assert.Contains("needs policy.checkpoint", charModel.Message);
        // An unformatted state (a tree stored before the template was set) passes through unchanged.
        var env = new PromptFormattedEnvironment(new Game24Environment(), ChatTemplate.ChatMl.RenderPrompt);
        Assert.Equal("Input: 4 5 6 10\n", env.Unformat(Task, "Input: 4 5 6 10\n"));
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}

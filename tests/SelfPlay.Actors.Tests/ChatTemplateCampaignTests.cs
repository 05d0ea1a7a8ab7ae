using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Configuration;
using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
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

    CampaignContext Context(string template)
    {
        var checkpoint = HfTestCheckpoint.Create(Path.Combine(_dir, "qwen-" + template), qwen2: true);
        var config = ConfigLoader.Parse(ConfigLoader.Build(null, [$"policy.checkpoint={checkpoint}", $"policy.chat-template={template}"]));
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

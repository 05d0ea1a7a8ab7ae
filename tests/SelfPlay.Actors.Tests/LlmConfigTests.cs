using SelfPlay.Actors.Configuration;
using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Llm;
using SelfPlay.Core.Search;
using SelfPlay.Samples.Game24;

namespace SelfPlay.Actors.Tests;

public class LlmConfigTests
{
    [Fact]
    public void Critic_and_judge_default_to_the_verifier_and_select_the_llm()
    {
        var defaults = ConfigLoader.Parse(ConfigLoader.Build(null, []));
        Assert.Equal(("verifier", "verifier"), (defaults.Search.Critic, defaults.Search.Spar!.Judge));
        var (critic, judge) = LlmSelection.Create(defaults.Search, defaults.Environment.Llm, new Game24Environment());
        Assert.IsType<VerifierEvaluator>(critic);
        Assert.Null(judge);

        var llm = ConfigLoader.Parse(ConfigLoader.Build(null, ["search.critic=llm", "search.spar.judge=llm",
            "llm.endpoint=http://127.0.0.1:9/v1", "llm.model=judge-model"]));
        (critic, judge) = LlmSelection.Create(llm.Search, llm.Environment.Llm, new Game24Environment());
        Assert.IsType<LlmCritic>(critic);
        Assert.IsType<LlmJudge>(judge);
        Assert.Equal(("llm:judge-model", "llm:judge-model"), (critic.Name, judge.Name));
    }

    [Theory]
    [InlineData("search.spar.judge=llm", "", "selfplay.search.spar.judge = llm needs selfplay.llm.endpoint and selfplay.llm.model")]
    [InlineData("search.critic=llm", "llm.model=m", "selfplay.search.critic = llm needs selfplay.llm.endpoint and selfplay.llm.model")]
    [InlineData("search.critic=llm", "llm.endpoint=ftp://x", "selfplay.search.critic = llm needs selfplay.llm.endpoint and selfplay.llm.model")]
    [InlineData("search.critic=oracle", "", "selfplay.search.critic must be verifier, environment, llm, value or prm, got 'oracle'")]
    [InlineData("search.critic=prm", "critic.held-out-share=1", "selfplay.critic.held-out-share must be in [0, 1), got 1")]
    [InlineData("search.critic=value", "critic.batch-size=0", "selfplay.critic: batch-size and learning-rate must be positive, epochs and max-examples non-negative")]
    [InlineData("search.spar.judge=human", "", "selfplay.search.spar.judge must be verifier or llm, got 'human'")]
    public void Bad_llm_selections_fail_with_one_line(string select, string llm, string expected)
    {
        var sets = llm.Length == 0 ? new[] { select } : [select, llm];
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(ConfigLoader.Build(null, sets)));
        Assert.Equal(expected, e.Message);
    }

    [Fact]
    public void A_trained_critic_is_selected_with_its_training_settings()
    {
        var c = ConfigLoader.Parse(ConfigLoader.Build(null, ["search.critic=prm", "critic.epochs=3", "critic.max-examples=500"]));
        Assert.Equal("prm", c.Search.Critic);
        Assert.Equal(new CriticConfig(3, 32, 3e-4, 500, 0.1), c.Critic);
        // Terminal nodes and the first iteration are scored by the verifier.
        Assert.IsType<VerifierEvaluator>(LlmSelection.Create(c.Search, c.Environment.Llm, new Game24Environment()).Critic);
    }

    [Fact]
    public void A_malformed_llm_endpoint_is_a_one_line_error()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(ConfigLoader.Build(null,
            ["search.critic=llm", "llm.endpoint=ftp://example", "llm.model=m"])));
        Assert.Equal("selfplay.llm.endpoint must be an http(s) URL, got 'ftp://example'", e.Message);
    }
}

using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;

namespace SelfPlay.Core.Llm;

/// <summary>
/// search.critic and search.spar.judge: the verifier (default; the critic can also be the environment's step scores,
/// <see cref="StepScoreEvaluator"/>) or the llm section's chat model (<see cref="LlmCritic"/>,
/// <see cref="LlmJudge"/>), which then share one <see cref="OpenAiClient"/> per node.
/// </summary>
public static class LlmSelection
{
    public static bool UsesLlm(SearchConfig search) => search.Critic == "llm" || search.Spar?.Judge == "llm";

    /// <summary>The first problem as a one-line message, or null: an llm critic or judge needs a usable llm section.</summary>
    public static string? Validate(SearchConfig search, LlmConfig? llm)
    {
        if (!UsesLlm(search)) return null;
        var who = search.Critic == "llm" ? "selfplay.search.critic = llm" : "selfplay.search.spar.judge = llm";
        if (llm is null || string.IsNullOrWhiteSpace(llm.Endpoint) || string.IsNullOrWhiteSpace(llm.Model))
            return $"{who} needs selfplay.llm.endpoint and selfplay.llm.model";
        return Uri.TryCreate(llm.Endpoint, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? null
            : $"selfplay.llm.endpoint must be an http(s) URL, got '{llm.Endpoint}'";
    }

    /// <summary>The critic for the step searches and the judge for SPaR (null: the verifier judge) that the settings name;
    /// they reach the environment (initial states, verification) through <paramref name="environment"/>.</summary>
    public static (INodeEvaluator Critic, IJudge? Judge) Create(SearchConfig search, LlmConfig? llm, IEnvironment environment) =>
        Create(search, llm, new InlineEnvironmentSteps(environment));

    public static (INodeEvaluator Critic, IJudge? Judge) Create(SearchConfig search, LlmConfig? llm, IEnvironmentSteps environment)
    {
        var client = UsesLlm(search) ? new OpenAiClient(llm ?? new LlmConfig()) : null;
        INodeEvaluator critic = search.Critic switch
        {
            "llm" => new LlmCritic(client!, environment),
            StepScoreEvaluator.CriticName => new StepScoreEvaluator(environment),
            _ => new VerifierEvaluator(environment),
        };
        IJudge? judge = search.Spar?.Judge == "llm" ? new LlmJudge(client!, environment) : null;
        return (critic, judge);
    }
}

using System.Globalization;
using System.Text.RegularExpressions;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;

namespace SelfPlay.Core.Llm;

/// <summary>
/// SPaR's judge played by a chat model: n sampled critiques of (instruction, response), each ending with
/// "Final Judgement: Yes|No". Only the last such line counts (algorithms.md §2.6); a reply without one is unparsable.
/// </summary>
public sealed partial class LlmJudge(OpenAiClient client, IEnvironmentSteps environment, double temperature = 0.7) : IJudge
{
    /// <summary>Reads the instruction (the initial state) in this process.</summary>
    public LlmJudge(OpenAiClient client, IEnvironment environment, double temperature = 0.7)
        : this(client, new InlineEnvironmentSteps(environment), temperature) { }

    public const string Instructions =
        "You judge whether a response follows every requirement of an instruction. Write a short critique, then end with " +
        "one line: 'Final Judgement: Yes' if it follows all of them, or 'Final Judgement: No'.";

    public string Name => "llm:" + client.Model;

    public async Task<IReadOnlyList<Judgement>> JudgeAsync(EnvTask task, string response, int samples, long seed, CancellationToken cancellationToken = default)
    {
        var prompt = $"Instruction:\n{(await environment.InitialStateAsync(task, cancellationToken)).TrimEnd()}\n\nResponse:\n{response.TrimEnd()}";
        var replies = await client.CompleteManyAsync([ChatMessage.System(Instructions), ChatMessage.User(prompt)], samples, temperature,
            seed: seed, cancellationToken: cancellationToken);
        return replies.Select(Parse).ToList();
    }

    public static Judgement Parse(string reply)
    {
        var verdicts = Verdict().Matches(reply);
        if (verdicts.Count == 0) return new Judgement(Search.Verdict.Unparsable, reply.Trim());
        var last = verdicts[^1];
        var critique = reply[..last.Index].Trim().ReplaceLineEndings(" ");
        return new Judgement(last.Groups[1].Value.Equals("yes", StringComparison.OrdinalIgnoreCase) ? Search.Verdict.Yes : Search.Verdict.No, critique);
    }

    [GeneratedRegex(@"Final Judgement:\s*\**\s*(Yes|No)\b", RegexOptions.IgnoreCase)]
    private static partial Regex Verdict();
}

/// <summary>
/// A chat model as critic (Agent Q's AI feedback): it rates each proposed step from 0 to 10 ("Score: N"); the value
/// is N / 10. Terminal steps are worth the environment's verified reward: a critic never overrides the verifier.
/// An unparsable rating is 0.
/// </summary>
public sealed partial class LlmCritic(OpenAiClient client, IEnvironmentSteps environment) : INodeEvaluator
{
    /// <summary>Verifies terminal steps in this process.</summary>
    public LlmCritic(OpenAiClient client, IEnvironment environment) : this(client, new InlineEnvironmentSteps(environment)) { }

    public const string Instructions =
        "You rate one proposed step of an agent working on a task: how likely it leads to success. Reply with 'Score: N', N from 0 to 10.";

    public string Name => "llm:" + client.Model;

    /// <summary>Terminal nodes get the verified reward; the open ones are rated by concurrent requests, which an
    /// inference server batches (the critic actor also serves concurrent searches at once).</summary>
    public async Task<IReadOnlyList<double>> EvaluateAsync(EnvTask task, IReadOnlyList<NodeToScore> nodes, CancellationToken cancellationToken = default)
    {
        var verified = await new VerifierEvaluator(environment).EvaluateAsync(task, nodes, cancellationToken);
        return await Task.WhenAll(nodes.Select(async (node, i) =>
        {
            if (node.Outcome.IsTerminal) return verified[i];
            var prompt = $"So far:\n{node.StateBefore.TrimEnd()}\n\nProposed step:\n{node.Outcome.Appended.TrimEnd()}";
            return ParseScore(await client.CompleteAsync([ChatMessage.System(Instructions), ChatMessage.User(prompt)], 0, 16,
                cancellationToken: cancellationToken));
        }));
    }

    public static double ParseScore(string reply)
    {
        var m = Score().Match(reply);
        return m.Success && double.TryParse(m.Groups[1].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) ? Math.Clamp(s / 10, 0, 1) : 0;
    }

    [GeneratedRegex(@"Score:\s*(\d+(?:\.\d+)?)", RegexOptions.IgnoreCase)]
    private static partial Regex Score();
}

using SelfPlay.Core.Environments;

namespace SelfPlay.Core.Search;

/// <summary>Ask the policy for <paramref name="Count"/> next steps from a text state.</summary>
public sealed record ProposalRequest(string State, int Count, double Temperature, long Seed);

/// <summary>A proposed step: the action text (stop sequence removed) with the generated token ids and their log-probs.</summary>
public sealed record ProposedStep(string Action, int[] TokenIds, float[] LogProbs);

/// <summary>The expander: proposes child steps. Batched, so one call can serve many states (evaluation, batched search).</summary>
public interface IStepProposer
{
    Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken cancellationToken = default);
}

/// <summary>A node to be scored: the state it was reached from, the step outcome, and the state after it.</summary>
public sealed record NodeToScore(string StateBefore, string StateAfter, StepOutcome Outcome);

/// <summary>The evaluator (critic): an absolute value for each new node.</summary>
public interface INodeEvaluator
{
    string Name { get; }
    Task<IReadOnlyList<double>> EvaluateAsync(EnvTask task, IReadOnlyList<NodeToScore> nodes, CancellationToken cancellationToken = default);
}

/// <summary>
/// The verifier as critic: terminal nodes are worth the environment's verified reward, other nodes 0.
/// It re-verifies the final states (one batched call) through <see cref="IEnvironmentSteps.VerifyAsync"/>, independently
/// of the step that ended them; a failing verifier scores 0.
/// </summary>
public sealed class VerifierEvaluator(IEnvironmentSteps environment) : INodeEvaluator
{
    /// <summary>Verifies in this process.</summary>
    public VerifierEvaluator(IEnvironment environment) : this(new InlineEnvironmentSteps(environment)) { }

    public string Name => "verifier";

    public async Task<IReadOnlyList<double>> EvaluateAsync(EnvTask task, IReadOnlyList<NodeToScore> nodes, CancellationToken cancellationToken = default)
    {
        var values = new double[nodes.Count];
        var terminal = Enumerable.Range(0, nodes.Count).Where(i => nodes[i].Outcome.IsTerminal).ToList();
        if (terminal.Count == 0) return values;
        var verified = await environment.VerifyAsync(task, terminal.Select(i => nodes[i].StateAfter).ToList(), cancellationToken);
        for (var k = 0; k < terminal.Count; k++) values[terminal[k]] = verified[k].Reward;
        return values;
    }
}

/// <summary>
/// The environment as critic (search.critic = environment): an open node is worth the environment's own process score
/// of the step that made it (<see cref="IEnvironment.ScoreStep"/>, carried in <see cref="StepOutcome.StepScore"/>; 0
/// where it gives none), a terminal node its re-verified reward. What Agent Q's AI feedback ranks, from a checker
/// that knows the task instead of a model that reads it.
/// </summary>
public sealed class StepScoreEvaluator(IEnvironmentSteps environment) : INodeEvaluator
{
    readonly VerifierEvaluator _verifier = new(environment);

    /// <summary>The search.critic value that selects this critic (and makes the environment steps compute step scores).</summary>
    public const string CriticName = "environment";

    public string Name => CriticName;

    public async Task<IReadOnlyList<double>> EvaluateAsync(EnvTask task, IReadOnlyList<NodeToScore> nodes, CancellationToken cancellationToken = default)
    {
        var values = (await _verifier.EvaluateAsync(task, nodes, cancellationToken)).ToArray();
        for (var i = 0; i < nodes.Count; i++)
            if (!nodes[i].Outcome.IsTerminal) values[i] = nodes[i].Outcome.StepScore ?? 0;
        return values;
    }
}

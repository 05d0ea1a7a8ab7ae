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
/// It re-verifies the final state through <see cref="IEnvironment.Verify"/>, independently of the step that ended it.
/// </summary>
public sealed class VerifierEvaluator(IEnvironment environment) : INodeEvaluator
{
    public string Name => "verifier";

    public Task<IReadOnlyList<double>> EvaluateAsync(EnvTask task, IReadOnlyList<NodeToScore> nodes, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<double>>(nodes.Select(n => Score(task, n)).ToArray());

    public double Score(EnvTask task, NodeToScore node)
    {
        if (!node.Outcome.IsTerminal) return 0;
        try { return environment.Verify(task, node.StateAfter).Reward; }
        catch (Exception) { return 0; } // a crashing verifier never rewards
    }
}

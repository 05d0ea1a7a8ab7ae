using SelfPlay.Core.Environments;

namespace SelfPlay.Core.Search;

/// <summary>
/// A uniform random policy over the environment's legal actions (<see cref="IEnvironment.LegalActions"/>): the
/// search alone, without a model, as the baseline `eval --search mcts:N --policy uniform` compares a policy against.
/// Each step carries one pseudo-token whose log-prob is log(1/n), so a search's length-normalised prior is uniform.
/// </summary>
public sealed class UniformLegalActionProposer : IStepProposer
{
    readonly IEnvironment _environment;
    readonly List<(string Initial, EnvTask Task)> _tasks;

    /// <param name="tasks">the tasks searched: a request's state belongs to the task whose initial state it starts with</param>
    public UniformLegalActionProposer(IEnvironment environment, IEnumerable<EnvTask> tasks)
    {
        _environment = environment;
        _tasks = [.. tasks.Select(t => (environment.InitialState(t), t)).OrderByDescending(t => t.Item1.Length)];
    }

    public Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken cancellationToken = default)
    {
        var result = new List<IReadOnlyList<ProposedStep>>(requests.Count);
        foreach (var request in requests)
        {
            var task = _tasks.FirstOrDefault(t => request.State.StartsWith(t.Initial, StringComparison.Ordinal)).Task
                ?? throw new ArgumentException("the state belongs to none of the tasks this uniform policy was made for");
            var legal = _environment.LegalActions(task, request.State)
                ?? throw new InvalidOperationException($"environment '{_environment.Name}' lists no legal actions, so it has no uniform policy");
            if (legal.Count == 0)
            {
                result.Add([]);
                continue;
            }
            var random = new Random((int)(request.Seed ^ (request.Seed >> 32)));
            var logProb = (float)-Math.Log(legal.Count);
            result.Add([.. Enumerable.Range(0, request.Count).Select(_ => new ProposedStep(legal[random.Next(legal.Count)], [0], [logProb]))]);
        }
        return Task.FromResult<IReadOnlyList<IReadOnlyList<ProposedStep>>>(result);
    }
}

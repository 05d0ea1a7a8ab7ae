using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Search;

/// <summary>
/// The plain expansion every step search uses: one batched proposer call for several nodes (each with its own count
/// and seed), one batched environment call for all their proposals, duplicates merged, one critic call for all new
/// children, which get the critic's value and the length-normalised prior. A node with no usable proposal becomes a dead end (terminal, reward 0).
/// </summary>
public static class Expansion
{
    public static async Task<List<TreeNode>> ExpandAsync(SearchRun run, IReadOnlyList<(TreeNode Node, int Count, long Seed)> nodes,
        double temperature, double lengthPenalty, CancellationToken ct, int breadthLimit = 0)
    {
        var start = run.ElapsedMs;
        var requests = nodes.Select(n => new ProposalRequest(run.StateOf(n.Node.Index), n.Count, temperature, n.Seed)).ToList();
        var answers = await run.ProposeAsync(requests, ct);
        var distinct = await run.DistinctAsync(requests.Select((r, i) => (r.State, answers[i])).ToList(), breadthLimit, ct);
        var candidates = new List<(int Parent, Candidate Candidate)>();
        for (var i = 0; i < nodes.Count; i++)
        {
            if (distinct[i].Count == 0) SearchRun.MarkDeadEnd(nodes[i].Node);
            candidates.AddRange(distinct[i].Select(c => (nodes[i].Node.Index, c)));
        }
        var values = await run.EvaluateAsync(candidates, ct);
        var wallMs = candidates.Count == 0 ? 0 : (run.ElapsedMs - start) / candidates.Count;
        return candidates.Select((c, i) => run.AddChild(c.Parent, c.Candidate, values[i], Mcts.Prior(c.Candidate.Step.LogProbs, lengthPenalty), wallMs)).ToList();
    }
}

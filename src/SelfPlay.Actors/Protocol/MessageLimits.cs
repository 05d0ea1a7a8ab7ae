using Akka.Actor;
using Akka.Event;
using SelfPlay.Core.Trees;

namespace SelfPlay.Actors.Protocol;

/// <summary>
/// What a member may ask of another: bounded batches, bounded texts, and well-formed trees. Checked where a message is
/// handled, so a faulty or hostile member gets a one-line refusal instead of an unbounded forward pass or a stored tree
/// that breaks every later query. The remoting frame (<see cref="MaxFrameBytes"/>) is sized for the largest tree.
/// </summary>
public static class MessageLimits
{
    /// <summary>Nodes of one tree (the searches' budgets stay far below: 24 simulations x 4 expansions is ~100).</summary>
    public const int MaxTreeNodes = 20_000;
    /// <summary>One state, step or task text, in characters (web-shop pages included).</summary>
    public const int MaxTextChars = 1_000_000;
    /// <summary>Requests, nodes, steps or states in one message.</summary>
    public const int MaxBatchItems = 4_096;
    /// <summary>Proposals asked for one state.</summary>
    public const int MaxProposalsPerState = 256;
    /// <summary>The remoting frame: a tree of <see cref="MaxTreeNodes"/> of ~550 bytes each as JSON, with room to spare.</summary>
    public const long MaxFrameBytes = 16_000_000;

    /// <summary>Why the message is refused, or null when it is within the limits.</summary>
    public static string? Problem(object message) => message switch
    {
        StoreTree s => TreeProblem(s.Tree),
        ProposeSteps p => Batch("proposal requests", p.Requests.Count)
                          ?? (p.Requests.FirstOrDefault(r => r.State.Length > MaxTextChars) is not null ? TooLong("a state") : null)
                          ?? (p.Requests.FirstOrDefault(r => r.Count is < 1 or > MaxProposalsPerState) is { } r
                              ? $"{r.Count} proposals asked for one state (1..{MaxProposalsPerState})" : null),
        ScoreNodes n => Batch("nodes to score", n.Nodes.Count)
                        ?? (n.Nodes.Any(x => x.StateBefore.Length > MaxTextChars || x.StateAfter.Length > MaxTextChars) ? TooLong("a state") : null),
        ApplySteps a => Batch("steps", a.Steps.Count)
                        ?? (a.Steps.Any(x => x.State.Length > MaxTextChars || x.Action.Length > MaxTextChars) ? TooLong("a step") : null),
        VerifyStates v => Batch("states", v.FinalStates.Count) ?? (v.FinalStates.Any(x => x.Length > MaxTextChars) ? TooLong("a state") : null),
        _ => null,
    };

    /// <summary>Refuses a message over the limits: one warning line naming the sender, a failure back to it.</summary>
    public static bool Refused(object message, IActorRef sender, ILoggingAdapter log)
    {
        if (Problem(message) is not { } problem) return false;
        log.Warning("refused {MessageType} from {Sender}: {Problem}", message.GetType().Name, sender.Path, problem);
        sender.Tell(new Status.Failure(new InvalidDataException($"refused: {problem}")));
        return true;
    }

    static string? Batch(string what, int count) => count > MaxBatchItems ? $"{count} {what} in one message (at most {MaxBatchItems})" : null;
    static string TooLong(string what) => $"{what} longer than {MaxTextChars} characters";

    /// <summary>A tree is stored only if it is what its id says and its nodes form a tree.</summary>
    public static string? TreeProblem(PreferenceTree tree)
    {
        if (tree.Campaign.Length == 0 || tree.Iteration < 0) return $"tree {tree.TreeId}: no campaign or a negative iteration";
        if (!tree.TreeId.StartsWith($"{tree.Campaign}/{tree.Iteration}/", StringComparison.Ordinal))
            return $"tree id '{tree.TreeId}' does not belong to campaign {tree.Campaign}, iteration {tree.Iteration}";
        if (tree.Nodes.Count is 0 or > MaxTreeNodes) return $"tree {tree.TreeId}: {tree.Nodes.Count} nodes (1..{MaxTreeNodes})";
        for (var i = 0; i < tree.Nodes.Count; i++)
        {
            var node = tree.Nodes[i];
            if (node.Index != i || (i == 0 ? node.Parent != -1 : node.Parent < 0 || node.Parent >= i))
                return $"tree {tree.TreeId}: node {i} is out of order (index {node.Index}, parent {node.Parent})";
            foreach (var c in node.Children)
                if (c <= i || c >= tree.Nodes.Count) return $"tree {tree.TreeId}: node {i} has a child outside the tree";
            if (node.StepText.Length > MaxTextChars || node.Action.Length > MaxTextChars || node.TokenIds.Length > MaxTextChars
                || node.LogProbs.Length > MaxTextChars)
                return $"tree {tree.TreeId}: node {i} is larger than {MaxTextChars} characters or tokens";
        }
        return null;
    }
}

using SelfPlay.Core.Trees;
using SelfPlay.Models.Generation;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;

namespace SelfPlay.Models.Training;

/// <summary>A generated step as the generator saw it: the state it was proposed from, its tokens and their log-probs.</summary>
public sealed record GeneratedStep(string State, int[] TokenIds, float[] LogProbs);

/// <summary>
/// How far the log-probs stored with generated steps (by the inference actor, or by a server with
/// inference.backend = openai) are from the learner's own forward of exactly those tokens after exactly that prompt,
/// under the policy that generated them: |stored − learner| over every generated token. A loss that uses the stored
/// log-probs (behaviour reference, PPO's π_old) is only right when this is near 0.
/// </summary>
public sealed record LogProbParity(double MeanAbsDifference, double MaxAbsDifference, int Tokens, int StepCount)
{
    /// <summary>How a failed check's message starts: training that fails so is not retried (it would fail again).</summary>
    public const string FailurePrefix = "log-prob parity:";

    /// <returns>null when there is no step</returns>
    public static LogProbParity? Measure(LlamaForCausalLM policy, ITokenizer tokenizer, IReadOnlyList<GeneratedStep> steps)
    {
        if (steps.Count == 0) return null;
        var sequences = steps.Select(s =>
        {
            var prompt = PolicyEncoding.Prompt(tokenizer, s.State);
            return new ScoredSequence([.. prompt, .. s.TokenIds], [.. prompt.Select(_ => false), .. s.TokenIds.Select(_ => true)]);
        }).ToList();
        var learner = ScoredTokenLogProbs.Compute(policy, sequences);
        var differences = steps.SelectMany((s, i) => s.LogProbs.Zip(learner[i], (a, b) => Math.Abs((double)a - b))).ToList();
        return new LogProbParity(differences.Average(), differences.Max(), differences.Count, steps.Count);
    }

    /// <summary>
    /// Every generated step of the step searches' trees that kept its log-probs, after its parent's state (SPaR's
    /// refinements are proposed from other text than their parent's state, so they are left out).
    /// </summary>
    public static IEnumerable<GeneratedStep> Steps(IEnumerable<PreferenceTree> trees) =>
        from tree in trees
        where tree.Algorithm != "spar"
        from node in tree.Nodes.Skip(1)
        where node.TokenIds.Length > 0 && node.LogProbs.Length == node.TokenIds.Length
        select new GeneratedStep(tree.StateAt(node.Parent), node.TokenIds, node.LogProbs);
}

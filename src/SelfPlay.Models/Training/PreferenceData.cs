using SelfPlay.Core.Preferences;
using SelfPlay.Models.Generation;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;

namespace SelfPlay.Models.Training;

/// <summary>
/// A tokenized candidate: its sequence (prompt unscored, the policy's tokens scored), and per scored token the step it
/// belongs to, the reference log-prob and the behaviour log-prob (log-probs at generation time; empty if unknown).
/// </summary>
public sealed record PreparedCandidate(ScoredSequence Sequence, int[] StepOf, float[] Reference, float[] Behaviour, double Score, int Visits)
{
    public int Tokens => StepOf.Length;
    public float ReferenceSum => Reference.Sum();
}

/// <summary>A training example ready for the loss: candidates best first, reference log-probs already computed.</summary>
public sealed record PreparedExample(ExampleKind Kind, IReadOnlyList<PreparedCandidate> Candidates, double LabelSmoothing, string Source);

/// <summary>Where reference log-probs come from: a frozen model, the behaviour policy stored with the tree, or none (reference-free losses).</summary>
public enum ReferenceSource { Model, Behaviour, None }

/// <summary>
/// Turns extracted or imported examples into <see cref="PreparedExample"/>s. Reference log-probs are computed here,
/// once per dataset, and travel with the data: training epochs never run the reference model.
/// </summary>
public static class PreferenceData
{
    /// <summary>
    /// Prompt tokens (BOS + text, unscored), then each step: the policy's generated tokens (scored) and the rest of the
    /// step's text that the environment wrote (unscored). A step without generated tokens (imported text) is scored whole.
    /// </summary>
    public static (ScoredSequence Sequence, int[] StepOf) Encode(CharTokenizer tokenizer, string prompt, Candidate candidate)
    {
        var ids = new List<int>(PolicyEncoding.Prompt(tokenizer, prompt));
        var scored = new List<bool>(new bool[ids.Count]);
        var stepOf = new List<int>();
        for (var s = 0; s < candidate.Steps.Count; s++)
        {
            var step = candidate.Steps[s];
            var policyTokens = step.TokenIds.Length > 0 ? step.TokenIds : tokenizer.Encode(step.Text);
            ids.AddRange(policyTokens);
            scored.AddRange(Enumerable.Repeat(true, policyTokens.Length));
            stepOf.AddRange(Enumerable.Repeat(s, policyTokens.Length));
            if (step.TokenIds.Length == 0) continue;
            var written = tokenizer.Decode(step.TokenIds);
            if (written.Length > 0 && step.Text.StartsWith(written, StringComparison.Ordinal) && step.Text.Length > written.Length)
            {
                var rest = tokenizer.Encode(step.Text[written.Length..]);
                ids.AddRange(rest);
                scored.AddRange(new bool[rest.Length]);
            }
        }
        return (new ScoredSequence([.. ids], [.. scored]), [.. stepOf]);
    }

    public static List<PreparedExample> Prepare(IReadOnlyList<PreferenceExample> examples, CharTokenizer tokenizer,
        ReferenceSource source, LlamaForCausalLM? reference = null)
    {
        var encoded = examples.Select(e => e.Candidates.Select(c => Encode(tokenizer, e.Prompt, c)).ToList()).ToList();
        float[][]? referenceLogProbs = null;
        if (source == ReferenceSource.Model)
            referenceLogProbs = ScoredTokenLogProbs.Compute(reference ?? throw new ArgumentNullException(nameof(reference)),
                encoded.SelectMany(e => e.Select(c => c.Sequence)).ToList());
        var prepared = new List<PreparedExample>(examples.Count);
        var flat = 0;
        for (var i = 0; i < examples.Count; i++)
        {
            var candidates = new List<PreparedCandidate>();
            for (var j = 0; j < encoded[i].Count; j++, flat++)
            {
                var (sequence, stepOf) = encoded[i][j];
                var candidate = examples[i].Candidates[j];
                var behaviour = candidate.Steps.All(s => s.TokenIds.Length > 0 && s.LogProbs.Length == s.TokenIds.Length)
                    ? candidate.Steps.SelectMany(s => s.LogProbs).ToArray() : [];
                var referenceValues = source switch
                {
                    ReferenceSource.Model => referenceLogProbs![flat],
                    ReferenceSource.Behaviour => behaviour.Length == stepOf.Length ? behaviour
                        : throw new InvalidDataException($"{examples[i].Source}: learner.reference = behaviour needs the generation log-probs of every step, and this example has none"),
                    _ => new float[stepOf.Length],
                };
                candidates.Add(new PreparedCandidate(sequence, stepOf, referenceValues, behaviour, candidate.Score, candidate.Visits));
            }
            prepared.Add(new PreparedExample(examples[i].Kind, candidates, examples[i].LabelSmoothing, examples[i].Source));
        }
        return prepared;
    }
}

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
    /// The candidate as the policy sees it (<see cref="PolicyEncoding"/>: prompt and steps encoded whole): the prompt is
    /// unscored, and of each step the text the policy generated (its tokens decoded, as far as the step's text keeps
    /// them) is scored and the rest, which the environment wrote, is not. A step without generated tokens (imported
    /// text) is scored whole.
    /// </summary>
    public static (ScoredSequence Sequence, int[] StepOf) Encode(ITokenizer tokenizer, string prompt, Candidate candidate)
    {
        var (sequence, stepOf, _) = EncodeAligned(tokenizer, prompt, candidate);
        return (sequence, stepOf);
    }

    /// <summary><see cref="Encode"/>, and whether each step's scored tokens are exactly the tokens it was generated as:
    /// only then do the log-probs stored with the steps belong to the tokens trained on.</summary>
    public static (ScoredSequence Sequence, int[] StepOf, bool Aligned) EncodeAligned(ITokenizer tokenizer, string prompt, Candidate candidate)
    {
        // Parts: the prompt, then per step the policy's text and the environment's rest.
        var parts = new List<string> { prompt };
        foreach (var step in candidate.Steps)
        {
            var policy = step.TokenIds.Length > 0 ? CommonPrefix(tokenizer.Decode(step.TokenIds), step.Text) : step.Text;
            parts.Add(policy);
            parts.Add(step.Text[policy.Length..]);
        }
        var (ids, partOf) = PolicyEncoding.Encode(tokenizer, parts);
        var scored = new bool[ids.Length];
        var stepOf = new List<int>();
        var perStep = candidate.Steps.Select(_ => new List<int>()).ToArray();
        for (var i = 0; i < ids.Length; i++)
        {
            if (partOf[i] < 1 || partOf[i] % 2 == 0) continue; // BOS, the prompt, or text the environment wrote
            var s = (partOf[i] - 1) / 2;
            scored[i] = true;
            stepOf.Add(s);
            perStep[s].Add(ids[i]);
        }
        var aligned = candidate.Steps.Select((step, s) => step.TokenIds.AsSpan().SequenceEqual(perStep[s].ToArray())).All(a => a);
        return (new ScoredSequence(ids, scored), [.. stepOf], aligned);
    }

    static string CommonPrefix(string a, string b)
    {
        var n = 0;
        while (n < a.Length && n < b.Length && a[n] == b[n]) n++;
        return a[..n];
    }

    /// <param name="reference">the reference model for <see cref="ReferenceSource.Model"/>; for
    /// <see cref="ReferenceSource.Behaviour"/>, the model that re-scores candidates whose stored log-probs are stale (their
    /// text re-encodes to other tokens than were generated, or a step has none): the policy before training, which
    /// generated the newest trees</param>
    /// <param name="referenceWithoutAdapter">score with <paramref name="reference"/>'s base, its LoRA adapter off (a LoRA
    /// learner's reference is the policy itself without the adapter: no second copy of the weights)</param>
    public static List<PreparedExample> Prepare(IReadOnlyList<PreferenceExample> examples, ITokenizer tokenizer,
        ReferenceSource source, LlamaForCausalLM? reference = null, LlamaForCausalLM? behaviourModel = null, bool referenceWithoutAdapter = false)
    {
        var encoded = examples.Select(e => e.Candidates.Select(c => EncodeAligned(tokenizer, e.Prompt, c)).ToList()).ToList();
        float[]? Stored(Candidate candidate, (ScoredSequence Sequence, int[] StepOf, bool Aligned) e) =>
            e.Aligned && candidate.Steps.All(s => s.TokenIds.Length > 0 && s.LogProbs.Length == s.TokenIds.Length)
                ? candidate.Steps.SelectMany(s => s.LogProbs).ToArray() : null;
        // Which candidates the model scores: all for a model reference, the stale ones for a behaviour reference.
        var toScore = new List<(int I, int J)>();
        for (var i = 0; i < examples.Count; i++)
            for (var j = 0; j < encoded[i].Count; j++)
                if (source == ReferenceSource.Model || (source == ReferenceSource.Behaviour && Stored(examples[i].Candidates[j], encoded[i][j]) is null))
                    toScore.Add((i, j));
        var scoredByModel = new Dictionary<(int, int), float[]>();
        if (toScore.Count > 0)
        {
            if (reference is null)
                throw new InvalidDataException(source == ReferenceSource.Model
                    ? "a model reference needs the reference model"
                    : $"{examples[toScore[0].I].Source}: learner.reference = behaviour needs the generation log-probs of every step, and this example has none that match its tokens");
            float[][] values;
            using (referenceWithoutAdapter ? reference.WithoutAdapter() : null)
                values = ScoredTokenLogProbs.Compute(reference, toScore.Select(k => encoded[k.I][k.J].Sequence).ToList());
            for (var k = 0; k < toScore.Count; k++) scoredByModel[toScore[k]] = values[k];
        }
        // Stale behaviour log-probs (advantage losses' π_old) are re-scored with the behaviour model when one is given.
        var behaviourScores = new Dictionary<(int, int), float[]>();
        if (behaviourModel is not null && source != ReferenceSource.Behaviour)
        {
            var stale = new List<(int I, int J)>();
            for (var i = 0; i < examples.Count; i++)
                for (var j = 0; j < encoded[i].Count; j++)
                    if (examples[i].Kind == ExampleKind.Advantage && Stored(examples[i].Candidates[j], encoded[i][j]) is null) stale.Add((i, j));
            if (stale.Count > 0)
            {
                var values = ScoredTokenLogProbs.Compute(behaviourModel, stale.Select(k => encoded[k.I][k.J].Sequence).ToList());
                for (var k = 0; k < stale.Count; k++) behaviourScores[stale[k]] = values[k];
            }
        }
        var prepared = new List<PreparedExample>(examples.Count);
        for (var i = 0; i < examples.Count; i++)
        {
            var candidates = new List<PreparedCandidate>();
            for (var j = 0; j < encoded[i].Count; j++)
            {
                var (sequence, stepOf, _) = encoded[i][j];
                var candidate = examples[i].Candidates[j];
                var behaviour = Stored(candidate, encoded[i][j])
                                ?? (source == ReferenceSource.Behaviour && scoredByModel.TryGetValue((i, j), out var rescored) ? rescored
                                    : behaviourScores.TryGetValue((i, j), out var b) ? b : []);
                var referenceValues = source switch
                {
                    ReferenceSource.None => new float[stepOf.Length],
                    _ => scoredByModel.TryGetValue((i, j), out var v) ? v : behaviour,
                };
                candidates.Add(new PreparedCandidate(sequence, stepOf, referenceValues, behaviour, candidate.Score, candidate.Visits));
            }
            prepared.Add(new PreparedExample(examples[i].Kind, candidates, examples[i].LabelSmoothing, examples[i].Source));
        }
        return prepared;
    }
}

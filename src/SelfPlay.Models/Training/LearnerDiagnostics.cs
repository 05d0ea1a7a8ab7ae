using SelfPlay.Core.Preferences;
using SelfPlay.Models.Llama;

namespace SelfPlay.Models.Training;

/// <summary>One optimizer step of a learner iteration: learning rate, loss and the pair diagnostics of its batches.</summary>
public sealed record LearnerStepLog(int Step, double LearningRate, double Loss, double RewardAccuracy, double RewardMargin,
    double ChosenLogProb, double RejectedLogProb, double RankingAccuracy, double RankingAccuracyNormalized)
{
    public static LearnerStepLog Of(StepReport s) => new(s.Step, s.LearningRate, R(s.Metrics.Loss), R(s.Metrics.RewardAccuracy), R(s.Metrics.RewardMargin),
        R(s.Metrics.ChosenLogProb), R(s.Metrics.RejectedLogProb), R(s.Metrics.RankingAccuracy), R(s.Metrics.RankingAccuracyNormalized));

    static double R(double x) => Math.Round(x, 6);
}

/// <summary>
/// One iteration's learner diagnostics (algorithms.md §12), over the pairs of the training data (lists: best vs worst):
/// reward accuracy and margin, chosen/rejected log-probs, ranking accuracy raw and length-normalised before and after
/// training, the idealized ranking accuracy, and how many pairs flipped either way.
/// </summary>
public sealed record LearnerDiagnostics(int Pairs, double RewardAccuracy, double RewardMargin, double ChosenLogProb, double RejectedLogProb,
    double RankingAccuracyBefore, double RankingAccuracy, double RankingAccuracyNormalizedBefore, double RankingAccuracyNormalized,
    double IdealizedRankingAccuracy, int FlippedToCorrect, int FlippedToIncorrect, IReadOnlyList<LearnerStepLog> Steps, HeldOutStopping? HeldOut = null)
{
    /// <summary>The policy's summed log-probs of the best and worst candidate of every pair/list example (no gradients).</summary>
    public static List<(double Chosen, double Rejected)> Score(LlamaForCausalLM policy, IReadOnlyList<PreparedExample> data)
    {
        var pairs = data.Where(e => e.Kind != ExampleKind.Advantage && e.Candidates.Count >= 2).ToList();
        var sums = SequenceScorer.SumLogProbs(policy, [.. pairs.Select(e => e.Candidates[0].Sequence), .. pairs.Select(e => e.Candidates[^1].Sequence)]);
        return [.. pairs.Select((_, i) => ((double)sums[i], (double)sums[pairs.Count + i]))];
    }

    public static LearnerDiagnostics Compute(IReadOnlyList<PreparedExample> data, List<(double Chosen, double Rejected)> before,
        List<(double Chosen, double Rejected)> after, double beta, IReadOnlyList<LearnerStepLog> steps)
    {
        var pairs = data.Where(e => e.Kind != ExampleKind.Advantage && e.Candidates.Count >= 2).ToList();
        PairScores At(int i, (double Chosen, double Rejected) s)
        {
            var (w, l) = (pairs[i].Candidates[0], pairs[i].Candidates[^1]);
            // α, the share of "raters" preferring the chosen step: its share of the two visit counts when known (MCTS-DPO's
            // confidence), else 0.75 (simulate_proportion of Chen et al.).
            var alpha = w.Visits + l.Visits > 0 && w.Visits > l.Visits ? w.Visits / (double)(w.Visits + l.Visits) : 0.75;
            return new PairScores(s.Chosen, s.Rejected, w.ReferenceSum, l.ReferenceSum, w.Tokens, l.Tokens, alpha);
        }
        var scoresBefore = before.Select((s, i) => At(i, s)).ToList();
        var scoresAfter = after.Select((s, i) => At(i, s)).ToList();
        var (up, down) = RankingDiagnostics.Flips(
            scoresBefore.Select(p => RankingDiagnostics.Ranked(p.PolicyChosen, p.PolicyRejected, p, false)).ToList(),
            scoresAfter.Select(p => RankingDiagnostics.Ranked(p.PolicyChosen, p.PolicyRejected, p, false)).ToList());
        return new LearnerDiagnostics(pairs.Count,
            RankingDiagnostics.RewardAccuracy(scoresAfter), RankingDiagnostics.RewardMargin(scoresAfter, beta),
            pairs.Count == 0 ? double.NaN : after.Average(s => s.Chosen), pairs.Count == 0 ? double.NaN : after.Average(s => s.Rejected),
            RankingDiagnostics.RankingAccuracy(scoresBefore, false), RankingDiagnostics.RankingAccuracy(scoresAfter, false),
            RankingDiagnostics.RankingAccuracy(scoresBefore, true), RankingDiagnostics.RankingAccuracy(scoresAfter, true),
            RankingDiagnostics.IdealizedRankingAccuracy(scoresAfter, beta), up, down, steps);
    }
}

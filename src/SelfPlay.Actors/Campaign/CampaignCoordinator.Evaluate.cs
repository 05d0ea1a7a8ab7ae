using Akka.Actor;
using Akka.Event;
using SelfPlay.Actors.Protocol;
using SelfPlay.Core.Search;

namespace SelfPlay.Actors.Campaign;

/// <summary>Phase eval: the current policy's greedy held-out evaluation becomes the iteration's summary row; then the next iteration.</summary>
public sealed partial class CampaignCoordinator
{
    sealed record Evaluated(EvalResult? Result, double Seconds);
    sealed record EvaluationFailed(string Reason);

    /// <summary>Phase eval: the greedy held-out evaluation of the current policy, piped back as Evaluated.</summary>
    void Evaluate()
    {
        Become(() =>
        {
            Command<Evaluated>(OnEvaluated);
            Command<EvaluationFailed>(f => Finish("failed", f.Reason));
            Command<InferenceStats>(_timings.Add);
            Always();
        });
        if (!_context.Config.Eval.Greedy)
        {
            Self.Tell(new Evaluated(null, 0));
            return;
        }
        Publish("eval", 0, 1);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        HeldOutEvaluation.RunAsync(_context, _inference, _environment, _state.PolicyVersion, _files).ContinueWith(t => t.IsCompletedSuccessfully
                ? new Evaluated(t.Result, clock.Elapsed.TotalSeconds)
                : (object)new EvaluationFailed($"held-out evaluation: {t.Exception?.GetBaseException().Message.ReplaceLineEndings(" ") ?? "failed"}"))
            .PipeTo(Self);
    }

    void OnEvaluated(Evaluated e)
    {
        if (e.Result is { Total: > 0 } failed && failed.EnvironmentErrors >= failed.Total)
        {
            // A 0/N from an environment that played no episode is no result; nothing is recorded, so a resume evaluates again.
            Finish("failed", $"iteration {_state.PolicyVersion}: the held-out evaluation could not play any of its {failed.Total} episodes " +
                             $"(the environment failed: {failed.FirstError}); fix the cause and run --resume");
            return;
        }
        var held = e.Result is { } r ? new HeldOutResult(r.Solved, r.Total, Math.Round(r.Rate, 4)) : null;
        var throughput = _state.PolicyVersion == 0 ? null : _timings.Throughput(_state);
        if (throughput is { } t)
            _log.Info("iteration {Iteration}: throughput search {TreesPerSecond} trees/s ({NodesPerSecond} nodes/s), inference {TokensPerSecond} tokens/s in {Batches} batches, batch fill {BatchFill:P1}",
                _state.Iteration, t.TreesPerSecond, t.NodesPerSecond, t.InferenceTokensPerSecond, t.InferenceBatches, t.BatchFill);
        var row = _state.Row(held, _timings.IterationWallSeconds(_state), _timings.SearchSeconds, e.Seconds, throughput);
        Persist(new IterationEvaluated(row), ev =>
        {
            Apply(ev);
            _log.Info("iteration {Iteration}: held-out {HeldOut}", row.Iteration, held is null ? "not evaluated" : $"{held.Solved}/{held.Total}");
            _files.Scalars(ev.Row, _state.IterationRows);
            if (e.Result is { EnvironmentErrors: > 0 } errors)
                _log.Warning("iteration {Iteration}: {EnvironmentErrors} of {Episodes} held-out episodes ended by an environment failure (counted unsolved), first: {FirstError}",
                    row.Iteration, errors.EnvironmentErrors, errors.Total, errors.FirstError);
            WriteSummary("running", null);
            NextIteration();
        });
    }
}

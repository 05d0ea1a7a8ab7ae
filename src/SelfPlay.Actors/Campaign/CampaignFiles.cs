using System.Text.Json;
using SelfPlay.Actors.Protocol;

namespace SelfPlay.Actors.Campaign;

/// <summary>
/// The files the coordinator keeps in the run folder for people and other processes: progress.json (the live phase),
/// summary.json, the TensorBoard event file and metrics.jsonl. None of them is campaign state (the journal is): a
/// write that fails is logged or skipped, never a reason to stop the campaign.
/// </summary>
public sealed class CampaignFiles(CampaignContext context, Action<string> warn)
{
    TensorBoardEvents? _tensorBoard;
    DateTime _progressWritten = DateTime.MinValue;

    /// <summary>RUN_DIR/progress.json, at most once a second unless <paramref name="force"/> (a phase's start and end):
    /// what a dashboard in another process shows as the live phase.</summary>
    public void Progress(CampaignProgress p, bool force)
    {
        var now = DateTime.UtcNow;
        if (!force && now - _progressWritten < TimeSpan.FromSeconds(1)) return;
        _progressWritten = now;
        try
        {
            var file = Path.Combine(context.RunDir, "progress.json");
            File.WriteAllText(file + ".tmp", JsonSerializer.Serialize(new { phase = p.Phase, iteration = p.Iteration, done = p.Done, total = p.Total, time = now }));
            File.Move(file + ".tmp", file, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // a view, not part of the campaign
    }

    /// <summary>The row's scalars into the event file (opened with the first row written) and RUN_DIR/metrics.jsonl;
    /// optimizer steps count on from the earlier iterations' (<paramref name="rows"/>).</summary>
    public void Scalars(IterationSummary row, IReadOnlyList<IterationSummary> rows)
    {
        try
        {
            _tensorBoard ??= new TensorBoardEvents(context.RunDir);
            var stepOffset = rows.Where(r => r.Iteration < row.Iteration).Sum(r => (long)(r.Learner?.Steps.Count ?? 0));
            var scalars = SummaryScalars.Of(row, stepOffset).ToList();
            _tensorBoard.Write(scalars);
            // The same scalars as JSON lines, for scripts that do not read event files.
            File.AppendAllLines(Path.Combine(context.RunDir, "metrics.jsonl"), scalars.Where(x => double.IsFinite(x.Value)).Select(x =>
                JsonSerializer.Serialize(new { iteration = row.Iteration, tag = x.Tag, step = x.Step, value = x.Value })));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            warn($"tensorboard: cannot write iteration {row.Iteration}'s scalars: {e.Message}");
        }
    }

    /// <summary>RUN_DIR/summary.json.</summary>
    public void Summary(string status, string? error, IReadOnlyList<IterationSummary> rows, double wallSeconds) =>
        new CampaignSummary(context.Config.Name, context.Setup.Environment.Name, status, rows, error, Math.Round(wallSeconds, 1),
            context.Setup.ExcludedTasks).Write(context.RunDir);

    /// <summary>Policy vN's held-out episodes (eval/vN.jsonl), in the held-out order.</summary>
    public void Episodes(int version, IEnumerable<HeldOutEpisode> episodes)
    {
        try { HeldOutEpisode.Write(context.EvaluationFile(version), episodes, context.Setup.HeldOut.Select(h => h.Id).ToList()); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // a record for reading, not part of the result
    }
}

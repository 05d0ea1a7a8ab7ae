using System.Diagnostics;
using SelfPlay.Actors.Protocol;

namespace SelfPlay.Actors.Campaign;

/// <summary>
/// The current iteration's clocks and inference counters, for its summary row. Wall and search seconds come from the
/// journal's timestamps (true across coordinator moves and resumes); this process's phase clock only stands in for a
/// journal without them, and the inference figures are counted since this coordinator's (re)start.
/// </summary>
public sealed class SearchTimings
{
    static readonly InferenceStats None = new(0, 0, 0, 0, 0);
    Stopwatch _phase = new();
    InferenceStats _stats = None;
    double _inferenceSeconds;

    public double SearchSeconds { get; private set; }

    /// <summary>A phase (warm-up, resume, search) starts now.</summary>
    public void StartPhase() => _phase = Stopwatch.StartNew();

    /// <summary>The search starts: its clock and the inference counters start from zero.</summary>
    public void StartSearch()
    {
        StartPhase();
        _stats = None;
    }

    public void NewIteration() => SearchSeconds = 0;

    /// <summary>Adds one inference actor's counters (their answers to the request sent when the search ends).</summary>
    public void Add(InferenceStats s) => _stats = new InferenceStats(_stats.Batches + s.Batches, _stats.Rows + s.Rows,
        Math.Max(_stats.MaxRows, s.MaxRows), _stats.Tokens + s.Tokens, _stats.BusySeconds + s.BusySeconds);

    /// <summary>The search ended: from the iteration's journaled start to its last journaled outcome.</summary>
    public void SearchDone(CampaignState state)
    {
        _inferenceSeconds = _phase.Elapsed.TotalSeconds;
        SearchSeconds = state.IterationStartedUtc is { } started && state.LastTaskUtc is { } last ? (last - started).TotalSeconds : _inferenceSeconds;
    }

    /// <summary>From the iteration's journaled start (the campaign's for the warm-up) to now.</summary>
    public double IterationWallSeconds(CampaignState state) =>
        (state.PolicyVersion == 0 ? state.StartedUtc : state.IterationStartedUtc) is { } start ? (DateTime.UtcNow - start).TotalSeconds : _phase.Elapsed.TotalSeconds;

    /// <summary>Trees and nodes from the journal over the search time; tokens and batch fill from the inference counters.</summary>
    public RoleThroughput Throughput(CampaignState state)
    {
        var seconds = Math.Max(SearchSeconds, 1e-9);
        var s = _stats;
        return new RoleThroughput(Math.Round((state.DoneTasks.Count - state.FailedTasks) / seconds, 3), Math.Round(state.Nodes / seconds, 1),
            Math.Round(s.Tokens / Math.Max(_inferenceSeconds, 1e-9), 1), s.Batches == 0 ? 0 : Math.Round(s.Rows / (double)(s.Batches * (long)s.MaxRows), 4),
            s.Batches, Math.Round(s.BusySeconds, 2));
    }
}

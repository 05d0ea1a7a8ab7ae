using System.Diagnostics.Metrics;

namespace SelfPlay.Actors.Hosting;

/// <summary>
/// The campaign's System.Diagnostics.Metrics meter ("SelfPlay"), which an OpenTelemetry or Prometheus exporter reads:
/// counters of stored trees, searched nodes, failed tasks, lease expiries and generated tokens; and gauges of the
/// coordinator's queue (tasks pending and leased) and the inference actor's last batch fill. Instruments are process
/// wide: in a cluster each node reports its own part.
/// </summary>
public static class SelfPlayMetrics
{
    public const string MeterName = "SelfPlay";
    static readonly Meter Meter = new(MeterName);

    public static readonly Counter<long> Trees = Meter.CreateCounter<long>("selfplay.trees", "{tree}", "trees searched and stored");
    public static readonly Counter<long> Nodes = Meter.CreateCounter<long>("selfplay.nodes", "{node}", "nodes of the stored trees");
    public static readonly Counter<long> FailedTasks = Meter.CreateCounter<long>("selfplay.tasks.failed", "{task}", "search attempts that failed");
    public static readonly Counter<long> LeaseExpiries = Meter.CreateCounter<long>("selfplay.leases.expired", "{lease}", "leases that ran out (the task was handed out again)");
    public static readonly Counter<long> Tokens = Meter.CreateCounter<long>("selfplay.inference.tokens", "{token}", "tokens the inference actor generated");
    public static readonly Counter<long> Batches = Meter.CreateCounter<long>("selfplay.inference.batches", "{batch}", "inference batches");

    static long _pending, _leased;
    static double _batchFill;

    static SelfPlayMetrics()
    {
        Meter.CreateObservableGauge("selfplay.queue.pending", () => Interlocked.Read(ref _pending), "{task}", "tasks waiting for a search worker");
        Meter.CreateObservableGauge("selfplay.queue.leased", () => Interlocked.Read(ref _leased), "{task}", "tasks leased to a search worker");
        Meter.CreateObservableGauge("selfplay.inference.batch_fill", () => Volatile.Read(ref _batchFill), "1", "rows of the last inference batch over its maximum");
    }

    public static void Queue(int pending, int leased)
    {
        Interlocked.Exchange(ref _pending, pending);
        Interlocked.Exchange(ref _leased, leased);
    }

    public static void BatchFill(double fill) => Volatile.Write(ref _batchFill, fill);
}

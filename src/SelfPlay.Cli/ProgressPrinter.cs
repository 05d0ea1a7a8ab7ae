using System.Diagnostics;
using Akka.Actor;
using SelfPlay.Actors.Protocol;

namespace SelfPlay.Cli;

/// <summary>Prints live progress (phase, iteration, done / total, rate, ETA) at most once a second per phase.</summary>
public sealed class ProgressPrinter : ReceiveActor
{
    string _phase = "";
    int _iteration = -1, _firstDone;
    Stopwatch _clock = new();
    TimeSpan? _lastPrint;

    public ProgressPrinter()
    {
        Receive<CampaignProgress>(p =>
        {
            if (p.Phase != _phase || p.Iteration != _iteration)
            {
                (_phase, _iteration, _clock, _lastPrint, _firstDone) = (p.Phase, p.Iteration, Stopwatch.StartNew(), null, p.Done);
            }
            if (_lastPrint is { } last && _clock.Elapsed - last < TimeSpan.FromSeconds(1) && p.Done != p.Total) return;
            _lastPrint = _clock.Elapsed;
            var seconds = _clock.Elapsed.TotalSeconds;
            var rate = seconds > 0 ? (p.Done - _firstDone) / seconds : 0; // a resumed phase starts part-done
            var eta = rate > 0 ? TimeSpan.FromSeconds((p.Total - p.Done) / rate) : (TimeSpan?)null;
            var unit = p.Phase == "search" ? "trees" : "steps";
            Console.WriteLine(p.Phase == "eval"
                ? $"[iteration {p.Iteration}] eval     greedy held-out evaluation"
                : $"[iteration {p.Iteration}] {p.Phase,-8} {p.Done,5}/{p.Total,-5} {unit}  {rate,7:F1} {unit}/s  ETA {(eta is { } e ? Eta(e) : "--:--")}");
        });
    }

    /// <summary>mm:ss under an hour, h:mm:ss from then on (90 minutes is 1:30:00, not 30:00).</summary>
    public static string Eta(TimeSpan e) => e.TotalHours >= 1 ? $"{(int)e.TotalHours}:{e.ToString(@"mm\:ss")}" : e.ToString(@"mm\:ss");
}

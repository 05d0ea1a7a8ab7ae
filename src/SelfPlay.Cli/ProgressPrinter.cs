using System.Diagnostics;
using Akka.Actor;
using SelfPlay.Actors.Protocol;

namespace SelfPlay.Cli;

/// <summary>
/// Prints live progress (phase, iteration, done / total, rate, ETA). In a terminal one line per phase is rewritten in
/// place at most once a second; in a log (output redirected, as in CI) a line is printed at each 5% of the phase, at
/// least once a minute while it runs, and at its end, so an hours-long campaign writes a few hundred lines, not one a second.
/// </summary>
public sealed class ProgressPrinter : ReceiveActor
{
    readonly bool _interactive = !Console.IsOutputRedirected;
    string _phase = "";
    int _iteration = -1, _firstDone, _lastDone;
    Stopwatch _clock = new();
    TimeSpan? _lastPrint;
    bool _lineOpen; // a terminal line rewritten in place, not yet ended

    public ProgressPrinter()
    {
        Receive<CampaignProgress>(p =>
        {
            if (p.Phase != _phase || p.Iteration != _iteration)
            {
                EndLine();
                (_phase, _iteration, _clock, _lastPrint, _firstDone, _lastDone) = (p.Phase, p.Iteration, Stopwatch.StartNew(), null, p.Done, p.Done);
            }
            if (_lastPrint is { } last && !Due(_interactive, _clock.Elapsed - last, _lastDone, p.Done, p.Total)) return;
            (_lastPrint, _lastDone) = (_clock.Elapsed, p.Done);
            var seconds = _clock.Elapsed.TotalSeconds;
            var rate = seconds > 0 ? (p.Done - _firstDone) / seconds : 0; // a resumed phase starts part-done
            var eta = rate > 0 ? TimeSpan.FromSeconds((p.Total - p.Done) / rate) : (TimeSpan?)null;
            var unit = p.Phase == "search" ? "trees" : "steps";
            var line = p.Phase == "eval"
                ? $"[iteration {p.Iteration}] eval     greedy held-out evaluation"
                : $"[iteration {p.Iteration}] {p.Phase,-8} {p.Done,5}/{p.Total,-5} {unit}  {rate,7:F1} {unit}/s  ETA {(eta is { } e ? Eta(e) : "--:--")}";
            if (!_interactive) Console.WriteLine(line);
            else
            {
                Console.Write("\r" + line + "\u001b[K"); // back to the line's start, write, clear what is left of the old one
                _lineOpen = true;
                if (p.Done == p.Total && p.Phase != "eval") EndLine();
            }
        });
    }

    protected override void PostStop() => EndLine();

    void EndLine()
    {
        if (_lineOpen) Console.WriteLine();
        _lineOpen = false;
    }

    /// <summary>Whether a progress report is worth a line: its end always; in a terminal once a second; in a log at
    /// each 5% of the phase or after a minute of none.</summary>
    public static bool Due(bool interactive, TimeSpan sinceLastLine, int lastDone, int done, int total)
    {
        if (done == total) return done != lastDone || sinceLastLine >= TimeSpan.FromSeconds(1);
        if (interactive) return sinceLastLine >= TimeSpan.FromSeconds(1);
        return total > 0 && done * 20L / total > lastDone * 20L / total || sinceLastLine >= TimeSpan.FromMinutes(1);
    }

    /// <summary>mm:ss under an hour, h:mm:ss from then on (90 minutes is 1:30:00, not 30:00).</summary>
    public static string Eta(TimeSpan e) => e.TotalHours >= 1 ? $"{(int)e.TotalHours}:{e.ToString(@"mm\:ss")}" : e.ToString(@"mm\:ss");
}

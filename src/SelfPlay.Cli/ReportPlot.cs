using SelfPlay.Actors.Campaign;
using ScottPlot;

namespace SelfPlay.Cli;

/// <summary>
/// <c>selfplay report --plot FILE.png|FILE.svg</c>: three panels from the runs' summary.json (ScottPlot): held-out
/// success per iteration (runs that share a name, the seeds of one sweep setting, as their mean with the range
/// shaded), the training loss per optimizer step of every iteration in a row, and pairs and solved trees per iteration.
/// </summary>
public static class ReportPlot
{
    const int Width = 900, PanelHeight = 320;

    public static void Save(IReadOnlyList<CampaignSummary> summaries, string file)
    {
        var extension = Path.GetExtension(file).ToLowerInvariant();
        if (extension is not (".png" or ".svg")) throw new UsageException($"--plot needs a .png or .svg file, got '{file}'");
        var multiplot = Build(summaries);
        if (extension == ".png")
        {
            multiplot.SavePng(file, Width, PanelHeight * 3);
            return;
        }
        using var stream = File.Create(file);
        WriteSvg(multiplot, stream);
    }

    /// <summary>The plot as SVG (the dashboard embeds it).</summary>
    public static void WriteSvg(IReadOnlyList<CampaignSummary> summaries, Stream stream) => WriteSvg(Build(summaries), stream);

    static void WriteSvg(Multiplot multiplot, Stream stream)
    {
        var height = PanelHeight * 3;
        using var canvas = SkiaSharp.SKSvgCanvas.Create(new SkiaSharp.SKRect(0, 0, Width, height), stream);
        canvas.Clear(SkiaSharp.SKColors.White);
        multiplot.Render(canvas, new PixelRect(0, Width, height, 0));
    }

    static Multiplot Build(IReadOnlyList<CampaignSummary> summaries)
    {
        var multiplot = new Multiplot();
        multiplot.AddPlots(3);
        var (heldOut, loss, pairs) = (multiplot.GetPlot(0), multiplot.GetPlot(1), multiplot.GetPlot(2));
        var palette = new ScottPlot.Palettes.Category10();
        var groups = summaries.GroupBy(s => s.Name).ToList();
        for (var g = 0; g < groups.Count; g++)
        {
            var runs = groups[g].ToList();
            var color = palette.GetColor(g);
            var label = runs.Count == 1 ? groups[g].Key : $"{groups[g].Key} ({runs.Count} runs: mean, range)";
            // Held-out success, % of the held-out tasks, per iteration (0 = after the warm-up).
            var byIteration = runs.SelectMany(r => r.Iterations).Where(r => r.HeldOut is not null).GroupBy(r => r.Iteration).OrderBy(i => i.Key)
                .Select(i => (X: (double)i.Key, Rates: i.Select(r => r.HeldOut!.Rate * 100).ToList())).ToList();
            if (byIteration.Count > 0)
            {
                if (runs.Count > 1)
                {
                    var band = heldOut.Add.FillY(byIteration.Select(i => i.X).ToArray(), byIteration.Select(i => i.Rates.Min()).ToArray(), byIteration.Select(i => i.Rates.Max()).ToArray());
                    band.FillColor = color.WithAlpha(0.2);
                    band.LineColor = Colors.Transparent;
                }
                var mean = heldOut.Add.Scatter(byIteration.Select(i => i.X).ToArray(), byIteration.Select(i => i.Rates.Average()).ToArray(), color);
                mean.LegendText = label;
            }
            // Training loss per optimizer step, iterations one after another; one line per run.
            for (var r = 0; r < runs.Count; r++)
            {
                var steps = runs[r].Iterations.OrderBy(i => i.Iteration).SelectMany(i => i.Learner?.Steps ?? []).Select(s => s.Loss).Where(double.IsFinite).ToList();
                if (steps.Count == 0) continue;
                var line = loss.Add.Scatter(Enumerable.Range(1, steps.Count).Select(x => (double)x).ToArray(), steps.ToArray(), color);
                line.MarkerSize = 3; // markers: a single step is a point, not an invisible line
                if (r == 0) line.LegendText = groups[g].Key;
            }
            // Pairs and solved trees per self-play iteration (mean over the runs of the group).
            var selfPlay = runs.SelectMany(r => r.Iterations).Where(i => i.Iteration > 0).GroupBy(i => i.Iteration).OrderBy(i => i.Key).ToList();
            if (selfPlay.Count > 0)
            {
                var xs = selfPlay.Select(i => (double)i.Key).ToArray();
                var p = pairs.Add.Scatter(xs, selfPlay.Select(i => i.Average(r => (double)r.Pairs)).ToArray(), color);
                p.LegendText = $"{groups[g].Key}: pairs";
                var solved = pairs.Add.Scatter(xs, selfPlay.Select(i => i.Average(r => (double)r.SolvedTrees)).ToArray(), color);
                solved.MarkerShape = MarkerShape.OpenSquare; // not a dashed line: SVG output has no path effects
                solved.LegendText = $"{groups[g].Key}: solved trees";
            }
        }
        heldOut.Title("held-out success");
        heldOut.XLabel("iteration (0 = after the warm-up)");
        heldOut.YLabel("% solved");
        loss.Title("training loss");
        loss.XLabel("optimizer step");
        loss.YLabel("loss");
        pairs.Title("pairs and solved trees");
        pairs.XLabel("iteration");
        pairs.YLabel("count");
        foreach (var plot in new[] { heldOut, loss, pairs }) plot.ShowLegend(Alignment.UpperLeft);
        foreach (var plot in new[] { heldOut, pairs }) plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(1); // whole iterations

        return multiplot;
    }
}

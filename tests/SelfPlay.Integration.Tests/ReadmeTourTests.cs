using System.Diagnostics;
using System.Text.RegularExpressions;

namespace SelfPlay.Integration.Tests;

/// <summary>The README's 5-minute tour runs exactly as written (the commands between its tour markers), in a fresh folder.</summary>
public sealed class ReadmeTourTests
{
    /// <summary>The shell lines of the README between &lt;!-- tour --&gt; and &lt;!-- /tour --&gt;, without the code fences.</summary>
    public static IReadOnlyList<string> TourCommands()
    {
        var readme = File.ReadAllText(Path.Combine(CliRunner.RepoRoot, "README.md"));
        var tour = Regex.Match(readme, "<!-- tour -->(.*?)<!-- /tour -->", RegexOptions.Singleline);
        Assert.True(tour.Success, "README.md has no <!-- tour --> ... <!-- /tour --> block");
        return tour.Groups[1].Value.Split('\n').Select(l => l.TrimEnd())
            .Where(l => l.Length > 0 && !l.StartsWith("```", StringComparison.Ordinal)).ToList();
    }

    [Fact]
    public async Task The_tour_runs_as_written()
    {
        var commands = TourCommands();
        Assert.Contains(commands, c => c.StartsWith("selfplay run ", StringComparison.Ordinal));
        Assert.All(commands, c => Assert.StartsWith("selfplay ", c)); // the tour is only selfplay commands

        var dir = Path.Combine(Path.GetTempPath(), "selfplay-tour-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            // A fresh folder that sees the repository's campaign files, as a user's clone would.
            Directory.CreateSymbolicLink(Path.Combine(dir, "hocon"), Path.Combine(CliRunner.RepoRoot, "hocon"));
            var script = Path.Combine(dir, "tour.sh");
            File.WriteAllText(script, string.Join('\n', [
                "set -euo pipefail",
                $"selfplay() {{ dotnet '{Path.Combine(AppContext.BaseDirectory, "selfplay.dll")}' \"$@\"; }}",
                .. commands.Select(c => $"echo '+ {c.Replace("'", "'\\''")}' >&2; {c}")]) + "\n");
            var start = new ProcessStartInfo("bash", [script]) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            try { await process.WaitForExitAsync(timeout.Token); }
            catch (OperationCanceledException) { process.Kill(entireProcessTree: true); throw new TimeoutException("the README tour did not finish in 5 minutes"); }
            var output = await stdout;
            var errors = await stderr;
            Assert.True(process.ExitCode == 0, $"the tour failed (exit {process.ExitCode}):\n{errors[^Math.Min(errors.Length, 4000)..]}");

            var run = Path.Combine(dir, "runs", "tour");
            Assert.True(File.Exists(Path.Combine(run, "summary.json")));
            Assert.Contains("(mcts, policy v0", output);                    // inspect --tree printed a tree
            Assert.Contains("mcts-dpo*", output);                           // inspect --pairs marked the campaign's extractor
            var pairs = File.ReadAllLines(Path.Combine(run, "trl-preference.jsonl"));
            Assert.NotEmpty(pairs);
            Assert.All(pairs, l => Assert.Contains("\"chosen\"", l));
            var png = File.ReadAllBytes(Path.Combine(run, "report.png"));
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }
}

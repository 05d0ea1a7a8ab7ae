using System.Diagnostics;

namespace SelfPlay.Integration.Tests;

public sealed record CliResult(int ExitCode, string Stdout, string Stderr);

/// <summary>Runs the real `selfplay` program (built next to the tests) as a child process.</summary>
public static class CliRunner
{
    public static string RepoRoot { get; } = FindRepoRoot();

    static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "SelfPlay.sln"))) return dir.FullName;
        throw new InvalidOperationException("SelfPlay.sln not found above the test folder");
    }

    public static Task<CliResult> RunAsync(params string[] args) => RunAsync(TimeSpan.FromMinutes(5), args);

    /// <param name="limit">how long the run may take before it is killed (5 minutes unless a run needs more)</param>
    public static async Task<CliResult> RunAsync(TimeSpan limit, string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepoRoot };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "selfplay.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            // A hung run must not outlive the test (it would hold the test run's files and locks).
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"selfplay {string.Join(' ', args)} did not finish in {limit.TotalMinutes:0.#} minutes");
        }
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }
}

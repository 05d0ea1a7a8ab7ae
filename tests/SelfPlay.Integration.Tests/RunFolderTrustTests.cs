namespace SelfPlay.Integration.Tests;

/// <summary>A run folder (or a checkpoint inside one) is data, never code: `eval` and `run --resume` say which settings
/// they use and never load a plug-in folder that only the run folder names.</summary>
public sealed class RunFolderTrustTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "selfplay-trust-" + Guid.NewGuid().ToString("N"));

    static string AdditionBin => Path.Combine(CliRunner.RepoRoot, "samples", "Addition", "bin",
        new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name, "net10.0");

    /// <summary>Someone else's run folder whose config.conf points at a plug-in folder.</summary>
    string RunFolder(string type, string pluginFolder)
    {
        var run = Path.Combine(_dir, "run");
        Directory.CreateDirectory(Path.Combine(run, "checkpoints", "v1"));
        File.WriteAllText(Path.Combine(run, "config.conf"),
            $"selfplay.environment.type = \"{type}\"\nselfplay.environment.plugin-folder = \"{pluginFolder}\"\n");
        return run;
    }

    [Fact]
    public async Task Eval_of_a_run_checkpoint_names_the_settings_and_refuses_the_run_folders_plugins()
    {
        var run = RunFolder("addition", AdditionBin);
        var result = await CliRunner.RunAsync("eval", "--checkpoint", Path.Combine(run, "checkpoints", "v1"));
        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"eval uses the settings of {Path.Combine(run, "config.conf")}", result.Stderr);
        Assert.Contains("a run folder is data, never code", result.Stderr);
        Assert.Contains($"--plugins {AdditionBin}", result.Stderr);

        // Given on the command line, the plug-in is trusted: the command goes on to the (empty) checkpoint.
        var trusted = await CliRunner.RunAsync("eval", "--checkpoint", Path.Combine(run, "checkpoints", "v1"), "--plugins", AdditionBin);
        Assert.NotEqual(0, trusted.ExitCode);
        Assert.DoesNotContain("never code", trusted.Stderr);
        Assert.Contains("checkpoint", trusted.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_built_in_environment_ignores_the_run_folders_plugin_folder_and_resume_refuses_foreign_plugins()
    {
        var run = RunFolder("game24", "/nonexistent/plugins");
        var result = await CliRunner.RunAsync("eval", "--checkpoint", Path.Combine(run, "checkpoints", "v1"));
        Assert.DoesNotContain("plugin-folder", result.Stderr); // the folder was never read
        Assert.Contains("checkpoint", result.Stderr, StringComparison.OrdinalIgnoreCase);

        Directory.Delete(run, true);
        run = RunFolder("addition", AdditionBin);
        var resume = await CliRunner.RunAsync("run", "--resume", "--run-dir", run);
        Assert.Equal(2, resume.ExitCode);
        Assert.Contains("resuming with the settings of", resume.Stdout);
        Assert.Contains("a run folder is data, never code", resume.Stderr);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

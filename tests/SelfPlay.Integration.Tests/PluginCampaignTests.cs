using System.Text.Json;
using System.Text.RegularExpressions;
using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;

namespace SelfPlay.Integration.Tests;

/// <summary>Environments as plug-ins through the real CLI: the README walk-through, and a broken plug-in.</summary>
public class PluginCampaignTests
{
    // The tiny model and budget of the quick campaigns; everything else comes from the config file as written.
    static readonly string[] Quick =
    [
        "--set", "model.hidden-size=32", "--set", "model.intermediate-size=64", "--set", "model.layers=1", "--set", "model.heads=2",
        "--set", "model.kv-heads=1", "--set", "warmup.epochs=1", "--set", "iterations.count=1", "--set", "iterations.trees=12",
        "--set", "search.simulations=4", "--set", "search.expansions=3", "--set", "learner.epochs=1", "--set", "actors.search-workers=4",
        "--set", "environment.held-out=20", "--set", "environment.train-tasks=100",
    ];

    /// <summary>The sample's build output for the configuration these tests were built in (Debug or Release).</summary>
    static string AdditionBin => Path.Combine(CliRunner.RepoRoot, "samples", "Addition", "bin",
        new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name, "net10.0");

    [Fact]
    public async Task Write_your_own_environment_runs_as_written()
    {
        var sample = Path.Combine(CliRunner.RepoRoot, "samples", "Addition");
        var page = File.ReadAllText(Path.Combine(sample, "README.md"));
        foreach (var file in new[] { "Addition.csproj", "AdditionEnvironment.cs", "AdditionProvider.cs", "addition.conf" })
            Assert.True(page.Contains(File.ReadAllText(Path.Combine(sample, file))), $"README.md does not show {file} as it is");
        Assert.Contains("Write your own environment", File.ReadAllText(Path.Combine(CliRunner.RepoRoot, "README.md")));

        var runDir = Path.Combine(Path.GetTempPath(), "selfplay-addition-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = await CliRunner.RunAsync(["run", "--config", "samples/Addition/addition.conf",
                "--set", $"environment.plugin-folder={AdditionBin}", .. Quick, "--run-dir", runDir]);
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json")));
            Assert.Equal("addition", summary.RootElement.GetProperty("environment").GetString());
            Assert.Equal("completed", summary.RootElement.GetProperty("status").GetString());
            var rows = summary.RootElement.GetProperty("iterations");
            Assert.Equal(2, rows.GetArrayLength());
            Assert.Equal(12, rows[1].GetProperty("trees").GetInt32());
            Assert.Equal(20, rows[1].GetProperty("heldOut").GetProperty("total").GetInt32());
        }
        finally
        {
            if (Directory.Exists(runDir)) Directory.Delete(runDir, true);
        }
    }

    /// <param name="placement">local: environment actors on the search node; cluster: on the members with the
    /// environment role (here the one process holds every role, so the cluster-aware router is what is exercised).</param>
    [Theory]
    [InlineData("local")]
    [InlineData("cluster")]
    public async Task A_throwing_and_hanging_plugin_fails_its_tasks_and_the_campaign_completes(string placement)
    {
        var runDir = Path.Combine(Path.GetTempPath(), "selfplay-faulty-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = await CliRunner.RunAsync(["run", "--config", "samples/Addition/addition.conf",
                "--set", $"environment.type={typeof(FaultyAdditionProvider).FullName}, {typeof(FaultyAdditionProvider).Assembly.GetName().Name}",
                "--set", $"environment.plugin-folder={AdditionBin}", "--set", "environment.step-timeout-seconds=0.3", "--set", $"name=faulty-{placement}",
                "--set", $"actors.environment-placement={placement}", "--set", "actors.environment-actors=2",
                "--set", "actors.lease-seconds=60", // a lost task would otherwise hold the campaign for 5 minutes
                .. Quick, "--run-dir", runDir]);
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json")));
            Assert.Equal("completed", summary.RootElement.GetProperty("status").GetString());
            var row = summary.RootElement.GetProperty("iterations")[1];
            Assert.True(row.GetProperty("failedTasks").GetInt32() > 0, row.ToString()); // the tasks whose initial state throws
            Assert.True(row.GetProperty("trees").GetInt32() > 0, row.ToString());       // the others were searched and stored
            var log = File.ReadAllText(Path.Combine(runDir, "selfplay.log"));
            Assert.Matches(new Regex("initial state of task [^ ]*3: InvalidOperationException: broken plug-in"), log);
            // Steps that hang or throw were contained by the environment actors: logged once each, one line.
            Assert.Matches(new Regex(@"environment faulty-addition: task [^ ]*5: environment error: step timed out after 0\.3 s"), log);
            Assert.Matches(new Regex("environment faulty-addition: task [^ ]*7: environment error: InvalidOperationException: broken step"), log);
        }
        finally
        {
            if (Directory.Exists(runDir)) Directory.Delete(runDir, true);
        }
    }

    [Fact]
    public async Task An_environment_that_is_down_stops_the_campaign_with_the_reason_and_a_resume_redoes_that_work()
    {
        var runDir = Path.Combine(Path.GetTempPath(), "selfplay-outage-" + Guid.NewGuid().ToString("N"));
        var downFile = runDir + ".down";
        string[] args = ["run", "--config", "samples/Addition/addition.conf",
            "--set", $"environment.type={typeof(OutageAdditionProvider).FullName}, {typeof(OutageAdditionProvider).Assembly.GetName().Name}",
            "--set", $"environment.plugin-folder={AdditionBin}", "--set", $"environment.settings.down-file={downFile}", "--set", "name=outage",
            .. Quick, "--run-dir", runDir];
        string[] resume = ["run", "--resume", "--run-dir", runDir, "--plugins", AdditionBin]; // a run folder's plug-ins load only when named
        try
        {
            // The held-out tasks' server is down: the warm-up trains, the evaluation can play nothing.
            File.WriteAllText(downFile, "held-out");
            var log = Path.Combine(runDir, "selfplay.log");
            var first = await CliRunner.RunAsync(args);
            Assert.Equal(1, first.ExitCode);
            Assert.Contains("iteration 0: the held-out evaluation could not play any of its 20 episodes (the environment failed: ", first.Stderr);
            Assert.Contains("the task server is down", first.Stderr);
            Assert.DoesNotContain("iteration 0: held-out ", File.ReadAllText(log));

            // Now the training tasks' server is down: the resume evaluates, then every task of iteration 1 fails and the campaign stops.
            File.WriteAllText(downFile, "train");
            var stopped = await CliRunner.RunAsync(resume);
            Assert.Contains("iteration 0: held-out ", File.ReadAllText(log));
            Assert.Equal(1, stopped.ExitCode);
            Assert.Contains("iteration 1: all 12 tasks failed, nothing to train on (last: ", stopped.Stderr);
            Assert.DoesNotContain("checkpoint: policy v1", File.ReadAllText(log));

            // Fixed: the resume searches the iteration again and completes.
            File.Delete(downFile);
            var third = await CliRunner.RunAsync(resume);
            Assert.True(third.ExitCode == 0, third.Stdout + third.Stderr);
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json")));
            var rows = summary.RootElement.GetProperty("iterations");
            Assert.Equal(2, rows.GetArrayLength());
            Assert.Equal(20, rows[0].GetProperty("heldOut").GetProperty("total").GetInt32());
            Assert.Equal(0, rows[1].GetProperty("failedTasks").GetInt32());
            Assert.Equal(12, rows[1].GetProperty("trees").GetInt32());
            Assert.Contains("iteration 1: every task had failed; searching all 12 again", File.ReadAllText(log));
        }
        finally
        {
            File.Delete(downFile);
            if (Directory.Exists(runDir)) Directory.Delete(runDir, true);
        }
    }

    [Fact]
    public async Task Unknown_plugin_types_and_folders_are_one_line_errors()
    {
        foreach (var (set, expected) in new[]
                 {
                     ("environment.type=Nope.Provider, Nope", "assembly 'Nope' not found"),
                     ("environment.plugin-folder=/no/such/folder", "environment.plugin-folder not found: /no/such/folder"),
                     ("environment.settings.min-numbers=x", "environment.settings.min-numbers must be an integer in 3..8, got 'x'"),
                 })
        {
            var args = set.Contains("min-numbers") ? new[] { "run", "--set", "environment.type=countdown", "--set", set } : new[] { "run", "--set", set };
            var result = await CliRunner.RunAsync(args);
            Assert.Equal(1, result.ExitCode);
            Assert.Contains(expected, result.Stderr);
            Assert.Single(result.Stderr.Trim().Split('\n'));
        }
    }
}

/// <summary>A broken plug-in: tasks ending in 3 cannot start, in 5 hang on every step, in 7 throw on every step.</summary>
public sealed class FaultyAdditionProvider : IEnvironmentProvider
{
    public string Name => "faulty-addition";

    public EnvironmentSetup Create(EnvironmentConfig config)
    {
        // The Addition sample was loaded from the plug-in folder (environment.plugin-folder).
        var addition = AppDomain.CurrentDomain.GetAssemblies().FirstOrDefault(a => a.GetName().Name == "SelfPlay.Samples.Addition")
            ?? throw new InvalidOperationException("the Addition sample is not loaded");
        var inner = (IEnvironmentProvider)Activator.CreateInstance(addition.GetType("SelfPlay.Samples.Addition.AdditionProvider", throwOnError: true)!)!;
        var setup = inner.Create(config);
        return setup with { Environment = new Faulty(setup.Environment) };
    }

    sealed class Faulty(IEnvironment inner) : IEnvironment
    {
        public string Name => "faulty-addition";
        public string StepStop => inner.StepStop;

        public string InitialState(EnvTask task) =>
            task.Id.EndsWith('3') ? throw new InvalidOperationException("broken plug-in") : inner.InitialState(task);

        public StepOutcome Step(EnvTask task, string state, string action)
        {
            if (task.Id.EndsWith('5')) Thread.Sleep(TimeSpan.FromSeconds(3));
            if (task.Id.EndsWith('7')) throw new InvalidOperationException("broken step");
            return inner.Step(task, state, action);
        }

        public (double Reward, string Reason) Verify(EnvTask task, string finalState) => inner.Verify(task, finalState);
        public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random) => inner.ReferenceActions(task, random);
    }
}

/// <summary>
/// The Addition sample behind a task server that is down for the held-out or the training tasks while the file named by
/// environment.settings.down-file says "held-out" or "train".
/// </summary>
public sealed class OutageAdditionProvider : IEnvironmentProvider
{
    public string Name => "outage-addition";

    public EnvironmentSetup Create(EnvironmentConfig config)
    {
        var addition = AppDomain.CurrentDomain.GetAssemblies().First(a => a.GetName().Name == "SelfPlay.Samples.Addition");
        var inner = (IEnvironmentProvider)Activator.CreateInstance(addition.GetType("SelfPlay.Samples.Addition.AdditionProvider", throwOnError: true)!)!;
        var setup = inner.Create(config);
        return setup with { Environment = new Outage(setup.Environment, config.Settings!["down-file"], setup.HeldOut.Select(t => t.Id).ToHashSet()) };
    }

    sealed class Outage(IEnvironment inner, string downFile, HashSet<string> heldOut) : IEnvironment
    {
        public string Name => "outage-addition";
        public string StepStop => inner.StepStop;

        public string InitialState(EnvTask task) =>
            File.Exists(downFile) && File.ReadAllText(downFile) == (heldOut.Contains(task.Id) ? "held-out" : "train")
                ? throw new HttpRequestException("connection refused (the task server is down)")
                : inner.InitialState(task);

        public StepOutcome Step(EnvTask task, string state, string action) => inner.Step(task, state, action);
        public (double Reward, string Reason) Verify(EnvTask task, string finalState) => inner.Verify(task, finalState);
        public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random) => inner.ReferenceActions(task, random);
    }
}

namespace SelfPlay.Integration.Tests;

/// <summary>Wrong input ends with a one-line error on stderr and a non-zero exit code.</summary>
public class CliErrorTests
{
    [Fact]
    public async Task Every_command_answers_help_and_the_program_its_version()
    {
        var version = await CliRunner.RunAsync("--version");
        Assert.Equal(0, version.ExitCode);
        Assert.Matches(@"^selfplay \d+\.\d+", version.Stdout);
        foreach (var command in new[] { "run", "node", "eval", "inspect", "export", "bench", "sweep", "model", "report", "serve", "dashboard" })
        {
            var help = await CliRunner.RunAsync(command, "--help");
            Assert.True(help.ExitCode == 0, command + ": " + help.Stderr);
            Assert.Contains($"selfplay {command} ", help.Stdout);
        }
    }

    [Fact]
    public void Every_command_help_lists_each_of_its_options_with_its_description()
    {
        var (root, _) = SelfPlay.Cli.CliCommands.Build();
        foreach (var command in SelfPlay.Cli.CliCommands.All)
        {
            var output = new StringWriter();
            var code = root.Parse([.. command.Path.Split(' '), "--help"], SelfPlay.Cli.CliCommands.Parser)
                .Invoke(new System.CommandLine.InvocationConfiguration { Output = output });
            Assert.Equal(0, code);
            var help = string.Join(" ", output.ToString().Split((char[])[' ', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains($"selfplay {command.Path} [options]", help);
            Assert.Contains(string.Join(" ", command.Description.Split(' ', StringSplitOptions.RemoveEmptyEntries)), help);
            foreach (var option in command.Options.Where(o => !o.Hidden))
                Assert.Contains($"{option.Name}{(option.Value is null ? "" : $" <{option.Value}>")} {option.Description}", help);
        }
    }

    [Fact]
    public async Task The_top_level_help_lists_every_command_and_every_option_and_words_complete()
    {
        var help = await CliRunner.RunAsync("--help");
        Assert.Equal(0, help.ExitCode);
        foreach (var command in SelfPlay.Cli.CliCommands.All)
        {
            var line = help.Stdout.Split('\n').Single(l => l.Trim() == $"selfplay {command.Path}" || l.TrimStart().StartsWith($"selfplay {command.Path} [", StringComparison.Ordinal));
            foreach (var option in command.Options.Where(o => !o.Hidden)) Assert.Contains($"[{option.Name}", line);
        }
        var completion = await CliRunner.RunAsync("[suggest:23]", "selfplay bench cluster --kill");
        Assert.Equal(0, completion.ExitCode);
        Assert.Equal(["--kill-every"], completion.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        var script = await CliRunner.RunAsync("completion");
        Assert.Contains("complete -o default -F _selfplay_complete selfplay", script.Stdout);
    }

    static async Task AssertFails(string expected, params string[] args)
    {
        var result = await CliRunner.RunAsync(args);
        Assert.NotEqual(0, result.ExitCode);
        var error = result.Stderr.Trim();
        Assert.Contains(expected, error);
        Assert.DoesNotContain('\n', error);
        Assert.DoesNotContain("   at ", error); // no stack traces
    }

    [Fact] public Task Unknown_set_key() => AssertFails("unknown setting selfplay.search.simulatons", "run", "--set", "search.simulatons=3");
    [Fact] public Task Missing_config_file() => AssertFails("config file not found", "run", "--config", "/no/such.conf");
    [Fact]
    public async Task Unknown_option_is_a_usage_error()
    {
        await AssertFails("unknown option '--bogus' (see selfplay run --help)", "run", "--bogus", "1");
        Assert.Equal(2, (await CliRunner.RunAsync("run", "--bogus", "1")).ExitCode);
    }

    [Fact] public Task Unknown_environment() => AssertFails("unknown environment 'chess' (known: ", "run", "--set", "environment.type=chess");
    [Fact] public Task Resume_needs_a_run_folder() => AssertFails("--resume needs --run-dir DIR", "run", "--resume");
    [Fact] public Task Node_rejects_unknown_roles() => AssertFails("unknown role 'chef'", "node", "--config", "hocon/campaigns/game24-quick.conf", "--roles", "search,chef");
    [Fact] public Task Node_needs_a_config() => AssertFails("node needs --config FILE", "node", "--roles", "search,inference");
    [Fact] public Task Unknown_command() => AssertFails("unknown command 'fly'", "fly");
    [Fact] public Task Unknown_bench() => AssertFails("unknown command 'bench fly' (see selfplay bench --help)", "bench", "fly");
    [Fact] public Task Missing_option_value() => AssertFails("--checkpoint needs a value (see selfplay model info --help)", "model", "info", "--checkpoint");
    [Fact] public Task Unexpected_argument() => AssertFails("unexpected argument 'extra' (see selfplay report --help)", "report", "extra");
    [Fact] public Task Unreadable_checkpoint() => AssertFails("checkpoint folder not found", "eval", "--checkpoint", "/no/such/checkpoint");
    [Fact] public Task Bad_search_spec() => AssertFails("--search must be greedy, mcts:N or one of ", "eval", "--checkpoint", "/tmp", "--search", "mcts:x");

    [Fact]
    public async Task Bad_range_and_missing_puzzle_file()
    {
        var csv = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(csv, ["Rank,Puzzles,AMT (s)", "1,1 1 4 6,4.4", "2,1 1 11 11,4.41"]);
            var dir = Path.Combine(Path.GetTempPath(), "selfplay-badckpt-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dir);
            await AssertFails("range", "eval", "--checkpoint", dir, "--puzzles", csv, "--range", "1:9");
            await AssertFails("range", "eval", "--checkpoint", dir, "--puzzles", csv, "--range", "x:2");
            await AssertFails("/no/such.csv", "eval", "--checkpoint", dir, "--puzzles", "/no/such.csv");
            await AssertFails("checkpoint has no config.json", "eval", "--checkpoint", dir, "--puzzles", csv, "--range", "0:1");
            Directory.Delete(dir);
        }
        finally
        {
            File.Delete(csv);
        }
    }

    [Theory]
    [InlineData(303, "05:03")]
    [InlineData(5400, "1:30:00")]
    [InlineData(36125, "10:02:05")]
    public void The_eta_shows_hours_once_there_are_any(int seconds, string expected) =>
        Assert.Equal(expected, SelfPlay.Cli.ProgressPrinter.Eta(TimeSpan.FromSeconds(seconds)));

    [Theory]
    [InlineData(false, 2, 0, 4, 100, false)]   // a log: 4% is still the first 5% step
    [InlineData(false, 2, 4, 5, 100, true)]    // a log: 5% crossed
    [InlineData(false, 61, 5, 6, 100, true)]   // a log: a minute without a line
    [InlineData(true, 0.5, 0, 3, 100, false)]  // a terminal: not yet a second
    [InlineData(true, 1.0, 0, 1, 100, true)]
    [InlineData(false, 0.1, 99, 100, 100, true)] // the end always
    [InlineData(false, 0.1, 100, 100, 100, false)] // but once
    public void Progress_lines_come_once_a_second_in_a_terminal_and_every_5_percent_in_a_log(bool terminal, double sinceLast, int lastDone, int done, int total, bool due) =>
        Assert.Equal(due, SelfPlay.Cli.ProgressPrinter.Due(terminal, TimeSpan.FromSeconds(sinceLast), lastDone, done, total));

    [Fact]
    public async Task Options_take_the_equals_form_and_the_log_can_be_compact_json()
    {
        var dir = Path.Combine(Path.GetTempPath(), "selfplay-json-log-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = await CliRunner.RunAsync("run", "--config=hocon/campaigns/game24-quick.conf", "--set=iterations.count=0", "--set=warmup.epochs=2",
                "--log-format=json", "--log-level=debug", $"--run-dir={dir}");
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            var events = File.ReadAllLines(Path.Combine(dir, "selfplay.log")).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
            Assert.NotEmpty(events);
            Assert.All(events, e => Assert.True(e.TryGetProperty("@t", out _) && e.TryGetProperty("@mt", out _)));
            // The Akka log calls are message templates with named properties: the event carries them by name.
            var published = Assert.Single(events, e => e.GetProperty("@mt").GetString()!.StartsWith("checkpoint: policy v{Version} published at {Directory}", StringComparison.Ordinal));
            Assert.Equal(0, published.GetProperty("Version").GetInt32());
            Assert.EndsWith("v0", published.GetProperty("Directory").GetString());
            Assert.True(published.GetProperty("Examples").GetInt32() > 0);
            Assert.DoesNotContain(events, e => System.Text.RegularExpressions.Regex.IsMatch(e.GetProperty("@mt").GetString()!, @"^(campaign|iteration|warm-up|checkpoint).*\{\d"));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    [Theory]
    [InlineData("--log-level=loud", "--log-level must be verbose, debug, information, warning or error, got 'loud'")]
    [InlineData("--log-format=xml", "--log-format must be text or json, got 'xml'")]
    public async Task A_bad_log_option_is_a_usage_error(string option, string message)
    {
        var dir = Path.Combine(Path.GetTempPath(), "selfplay-bad-log-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = await CliRunner.RunAsync("run", "--config", "hocon/campaigns/game24-quick.conf", option, "--run-dir", dir);
            Assert.Equal(2, result.ExitCode);
            Assert.Contains(message, result.Stderr);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }
}

using System.Diagnostics;
using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Protocol;
using SelfPlay.Cli;
using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Generation;
using SelfPlay.Samples.Game24;
using Serilog;

return await SelfPlayCommand.MainAsync(args);

namespace SelfPlay.Cli
{
    public static class SelfPlayCommand
    {
        const string ConfigFileName = "config.conf";

        public static EnvironmentRegistry Environments() => new EnvironmentRegistry().Register(new Game24Provider())
            .Register(new SelfPlay.Samples.Countdown.CountdownProvider())
            .Register(new SelfPlay.Samples.WordProblems.WordProblemsProvider())
            .Register(new SelfPlay.Samples.ToolUse.ToolUseProvider())
            .Register(new SelfPlay.Samples.WebShop.WebShopProvider())
            .Register(new SelfPlay.Samples.Instructions.InstructionsProvider());

        /// <summary>
        /// The environment settings a command may act on. Settings read from a run folder (`run --resume`, `eval` of a
        /// run's checkpoint) are data, never code: their environment.plugin-folder is not loaded unless the command line
        /// names it (--plugins DIR); a built-in environment needs no plug-in, so the folder is then simply not used.
        /// </summary>
        static EnvironmentConfig TrustedEnvironment(CampaignConfig config, string? runConfig, string? plugins)
        {
            var env = config.Environment;
            if (plugins is not null) return env with { PluginFolder = plugins };
            if (runConfig is null || env.PluginFolder.Length == 0) return env;
            if (!Environments().Names.Contains(env.Type, StringComparer.OrdinalIgnoreCase))
                throw new UsageException($"{runConfig} names environment.plugin-folder {env.PluginFolder}: a run folder is data, never code, " +
                                         $"so its plug-ins are not loaded; give --plugins {env.PluginFolder} if you trust them");
            return env with { PluginFolder = "" };
        }

        /// <summary>The program's version (the assembly's informational version, without the source revision).</summary>
        public static string Version =>
            (typeof(SelfPlayCommand).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
                .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "0.0.0").Split('+')[0];

        /// <summary>Readable by the owner only (0600): a run's settings say where its database and endpoints are.</summary>
        static void WritePrivate(string path, string text)
        {
            using var file = OperatingSystem.IsWindows()
                ? new FileStream(path, FileMode.Create, FileAccess.Write)
                : new FileStream(path, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite });
            using var writer = new StreamWriter(file);
            writer.Write(text);
        }

        public static async Task<int> MainAsync(string[] args)
        {
            try
            {
                if (args.Length == 0)
                {
                    Console.WriteLine("usage (selfplay --help, selfplay COMMAND --help):\n" + CliCommands.Synopsis());
                    return 2;
                }
                if (args[0] == "--version")
                {
                    Console.WriteLine($"selfplay {Version}");
                    return 0;
                }
                return await CliCommands.InvokeAsync(args[0] == "help" ? ["--help", .. args[1..]] : args);
            }
            catch (Exception e) when (e is UsageException or ConfigException)
            {
                Console.Error.WriteLine($"selfplay: {e.Message}");
                return 2;
            }
            catch (Exception e) when (e is ArgumentException or FileNotFoundException or DirectoryNotFoundException
                                          or InvalidDataException or FormatException or IOException)
            {
                Console.Error.WriteLine($"selfplay: {e.Message.ReplaceLineEndings(" ")}");
                return 1;
            }
            catch (Exception e)
            {
                // Anything else is a bug or an unforeseen failure: one line here, the stack in a file for the report.
                var file = Path.Combine(Path.GetTempPath(), $"selfplay-error-{Environment.ProcessId}.log");
                try { File.WriteAllText(file, e.ToString()); } catch (IOException) { file = "(not written)"; }
                Console.Error.WriteLine($"selfplay: unexpected {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")} (stack trace: {file})");
                return 1;
            }
        }

        internal static async Task<int> RunAsync(CliArgs a)
        {
            var dashboardPort = a.Get("--dashboard") is { } port ? SelfPlay.Cli.Dashboard.DashboardCommand.Port(port) : (int?)null;
            var metricsPort = a.Get("--metrics-port") is { } mp ? SelfPlay.Cli.Dashboard.DashboardCommand.Port(mp) : (int?)null;
            var resume = a.Has("--resume");
            if (resume && (a.Get("--config") is not null || a.All("--set").Count > 0))
                throw new UsageException("--resume continues with the run folder's config.conf; --config and --set are not allowed with it");
            var resumeConfig = resume ? Path.Combine(a.Get("--run-dir") ?? throw new UsageException("--resume needs --run-dir DIR"), ConfigFileName) : null;
            if (resumeConfig is not null && !File.Exists(resumeConfig)) throw new UsageException($"{a.Get("--run-dir")} holds no campaign to resume (no {ConfigFileName})");
            var hocon = ConfigLoader.Build(resumeConfig ?? a.Get("--config"), a.All("--set"));
            var config = ConfigLoader.Parse(hocon);
            if (resumeConfig is not null) Console.WriteLine($"resuming with the settings of {resumeConfig}");
            var setup = Environments().Create(TrustedEnvironment(config, resumeConfig, a.Get("--plugins")));
            var runDir = a.Get("--run-dir") ?? Path.Combine("runs", $"{config.Name}-{DateTime.Now:yyyyMMdd-HHmmss}");
            // Made before the run folder: a policy checkpoint without a usable tokenizer stops here, in one line.
            var context = new CampaignContext(config, setup, runDir);
            if (!resume && File.Exists(Path.Combine(runDir, CampaignSummary.FileName)))
                throw new UsageException($"{runDir} already holds a campaign; choose another --run-dir (or --resume it)");
            Directory.CreateDirectory(runDir);
            if (!resume) WritePrivate(Path.Combine(runDir, ConfigFileName), "# resolved configuration of this run\n" + ConfigLoader.Render(hocon));

            Log.Logger = CliLogging.Create(Path.Combine(runDir, "selfplay.log"), a);
            try
            {
                Console.WriteLine($"SelfPlay campaign '{config.Name}' on {setup.Environment.Name}: {setup.Train.Count} training / {setup.HeldOut.Count} held-out tasks, " +
                                  $"{config.Iterations.Count} iterations of {config.Iterations.Trees} trees; run folder {Path.GetFullPath(runDir)}");
                var clock = Stopwatch.StartNew();
                var actors = await CampaignSession.StartAsync(context, a.All("--seed"), resume, a.Get("--hostname") ?? "127.0.0.1");
                // The dashboard reads the run folder as `selfplay dashboard` does, on 127.0.0.1.
                await using var dashboard = dashboardPort is { } p ? await SelfPlay.Cli.Dashboard.DashboardCommand.StartAsync(runDir, "127.0.0.1", p, null) : null;
                using var metrics = metricsPort is null ? null : new SelfPlay.Cli.Dashboard.PrometheusMetrics();
                await using var metricsServer = metricsPort is { } m ? await metrics!.StartAsync(m) : null;
                using var cancel = new CancellationTokenSource();
                Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
                CampaignFinished finished;
                try
                {
                    finished = await actors.WaitAsync(cancel.Token);
                }
                catch (TaskCanceledException)
                {
                    finished = new CampaignFinished("interrupted", "interrupted by the user");
                }
                finally
                {
                    await actors.DisposeAsync();
                }
                Console.WriteLine();
                Console.Write(ReportCommand.Table(CampaignSummary.Read(runDir)));
                Console.WriteLine($"status: {finished.Status} after {clock.Elapsed:hh\\:mm\\:ss}; summary: {Path.Combine(runDir, CampaignSummary.FileName)}");
                if (finished.Error is not null) Console.Error.WriteLine($"selfplay: {finished.Error}");
                return finished.Status switch { "completed" => 0, "interrupted" => 130, _ => 1 }; // 130: stopped by Ctrl-C, as shells report SIGINT
            }
            finally
            {
                await Log.CloseAndFlushAsync();
            }
        }

        internal static async Task<int> EvalAsync(CliArgs a)
        {
            var uniform = a.Get("--policy") switch
            {
                null => false,
                "uniform" => true,
                var p => throw new UsageException($"--policy must be uniform (a random policy over the environment's legal actions), got '{p}'"),
            };
            if (uniform && a.Get("--checkpoint") is not null) throw new UsageException("--policy uniform searches without a model: give no --checkpoint");
            var checkpoint = a.Get("--checkpoint") ?? (uniform ? "" : throw new UsageException("eval needs --checkpoint DIR (or --policy uniform --search mcts:N)"));
            if (a.Get("--range") is not null && a.Get("--puzzles") is null) throw new UsageException("--range needs --puzzles FILE");
            // A checkpoint inside a run folder (RUN_DIR/checkpoints/vN) is evaluated with that run's settings
            // (split, step mode, step length) unless --config says otherwise.
            var runConfig = uniform ? "" : Path.GetFullPath(Path.Combine(checkpoint, "..", "..", ConfigFileName));
            var fromRun = a.Get("--config") is null && !uniform && File.Exists(runConfig) ? runConfig : null;
            if (fromRun is not null) Console.Error.WriteLine($"selfplay: eval uses the settings of {fromRun} (give --config FILE for others)");
            var hocon = ConfigLoader.Build(a.Get("--config") ?? fromRun, a.All("--set"));
            var config = ConfigLoader.Parse(hocon);
            if (a.Get("--env") is { } envName) config = config with { Environment = config.Environment with { Type = envName } };
            var setup = Environments().Create(TrustedEnvironment(config, fromRun, a.Get("--plugins")));
            if (a.Get("--tasks") is not null && a.Get("--puzzles") is not null) throw new UsageException("give --tasks FILE or --puzzles FILE, not both");
            // --tasks: one task input per line, any environment; --puzzles: Tree-of-Thoughts' 24.csv, Game of 24 only.
            IReadOnlyList<EnvTask> tasks = a.Get("--tasks") is { } taskFile ? TaskFile.Tasks(taskFile, "--tasks file")
                : a.Get("--puzzles") is not { } file ? setup.HeldOut
                : setup.Environment.Name == "game24" ? Game24Puzzles.LoadCsv(file, a.Get("--range")).Select(Game24Provider.Task).ToList()
                : throw new UsageException($"--puzzles reads Game of 24's 24.csv; environment '{setup.Environment.Name}' takes --tasks FILE (one input per line)");
            if (tasks.Count == 0) throw new UsageException("no task to evaluate (the --tasks file has no input line)");
            // greedy, or any search algorithm with the search.* settings (mcts:N: N simulations instead of search.simulations).
            var search = a.Get("--search") ?? "greedy";
            var searchConfig = search == "greedy" ? null
                : search.StartsWith("mcts:", StringComparison.Ordinal) ? int.TryParse(search[5..], out var n) && n > 0
                    ? config.Search with { Algorithm = "mcts", Simulations = n } : null
                : SearchAlgorithms.Names.Contains(search) ? config.Search with { Algorithm = search } : null;
            if (search != "greedy" && searchConfig is null)
                throw new UsageException($"--search must be greedy, mcts:N or one of {string.Join(", ", SearchAlgorithms.Names)}, got '{search}'");
            if (uniform && searchConfig is null) throw new UsageException("--policy uniform needs --search mcts:N or another search (a random policy has no greedy step)");
            if (uniform && setup.Environment.LegalActions(tasks[0], setup.Environment.InitialState(tasks[0])) is null)
                throw new UsageException($"--policy uniform: environment '{setup.Environment.Name}' lists no legal actions (game24 in operation step mode does)");

            // Each task's search is the campaign's (SearchAlgorithms.Create), seeded by the run's seed and the task, scored by the verifier.
            Func<EnvTask, ITreeSearch> SearchFor(IStepProposer proposer) => task => SearchAlgorithms.Create(searchConfig!, setup.Environment, proposer,
                new VerifierEvaluator(setup.Environment), config.Environment.MaxSteps, 0, Seeds.Mix(config.Seed, Seeds.Of(task.Id)));
            void Print(EvalResult result) =>
                Console.WriteLine(JsonSerializer.Serialize(new { solved = result.Solved, total = result.Total, rate = Math.Round(result.Rate, 4) }));
            if (uniform)
            {
                Print(await Evaluation.SearchAsync(tasks, SearchFor(new UniformLegalActionProposer(setup.Environment, tasks)), parallel: 1));
                return 0;
            }

            TorchSharp.torch.set_num_threads(config.Model.Threads);
            var (model, tokenizer, _) = Checkpoint.Load(checkpoint, config.Model.Device, dtype: config.Model.DType);
            using (model)
            {
                var env = setup.Environment;
                var proposer = new PolicyStepProposer(model, tokenizer, env.StepStop, config.Model.MaxStepTokens,
                    config.Model.PrefixCacheMb > 0 ? new PrefixCache(config.Model.PrefixCacheMb * 1024L * 1024) : null);
                var result = searchConfig is not null
                    ? await Evaluation.SearchAsync(tasks, SearchFor(proposer), parallel: 1)
                    : await Evaluation.GreedyAsync(env, tasks, proposer, config.Environment.MaxSteps,
                        onEpisode: a.Has("--show") ? (task, state, ok) => Console.Error.WriteLine($"--- {(ok ? "solved" : "failed")} {task.Input}\n{state}") : null);
                Print(result);
            }
            return 0;
        }
    }
}

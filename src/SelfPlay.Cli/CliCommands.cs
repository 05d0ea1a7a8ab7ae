using System.CommandLine;
using System.CommandLine.Completions;
using System.CommandLine.Help;
using SelfPlay.Actors.Hosting;
using SelfPlay.Cli.Dashboard;
using SelfPlay.Cli.Serve;

namespace SelfPlay.Cli;

/// <summary>One command of the program (a path such as "bench cluster"): what it does, its options and what runs it.</summary>
public sealed record CliCommand(string Path, string Description, IReadOnlyList<CliOption> Options, Func<CliArgs, Task<int>> Run);

/// <summary>
/// Every command and option of `selfplay`, in one table: System.CommandLine parses the command line with it, prints
/// each command's --help from it and completes words from it (the [suggest] directive, `selfplay completion`).
/// Usage errors are one line with exit code 2 (System.CommandLine's own would print the help below the error).
/// </summary>
public static class CliCommands
{
    static readonly CliOption Config = new("--config", "FILE", "campaign settings (HOCON) over reference.conf");
    static readonly CliOption Set = new("--set", "KEY=VALUE", "one setting over the config file (repeatable)", Repeats: true);
    static readonly CliOption RunDir = new("--run-dir", "DIR", "the run folder");
    static readonly CliOption Seed = new("--seed", "HOST:PORT", "a seed node of the cluster to join (repeatable)", Repeats: true);
    static readonly CliOption Hostname = new("--hostname", "H", "the address this node binds and advertises (default 127.0.0.1)");
    static readonly CliOption Plugins = new("--plugins", "DIR", "load the environment plug-ins in DIR (a run folder's own are never loaded without it)");
    static readonly CliOption MetricsPort = new("--metrics-port", "PORT", "serve Prometheus metrics on 127.0.0.1:PORT/metrics");
    static readonly CliOption LogLevel = new("--log-level", "LEVEL", "verbose, debug, information (default), warning or error");
    static readonly CliOption LogFormat = new("--log-format", "FORMAT", "text (default) or json (Serilog's compact JSON) for the log file");
    static readonly CliOption Checkpoint = new("--checkpoint", "DIR", "a checkpoint folder (ours or a Hugging Face one)");
    static readonly CliOption Postgres = new("--postgres", "CONN", "also measure PostgreSQL at this connection string");
    static readonly CliOption Device = new("--device", "DEVICE", "cpu (default) or cuda[:N]");
    static readonly CliOption Dtype = new("--dtype", "TYPE", "float32 (default) or bfloat16");
    static readonly CliOption Iteration = new("--iteration", "N", "only the trees of iteration N");

    /// <summary>run and node: where the log goes and how much of it.</summary>
    static readonly CliOption[] Logging = [LogLevel, LogFormat];

    public static readonly IReadOnlyList<CliCommand> All =
    [
        new("run", "Run a self-play campaign, or --resume one, with live progress and a closing table",
            [Config, Set, RunDir, Seed, Hostname, Plugins,
             new("--dashboard", "PORT", "serve the dashboard beside the campaign on 127.0.0.1:PORT (0: a free port, printed)"),
             MetricsPort, .. Logging,
             CliOption.Flag("--resume", "continue the campaign of --run-dir with its config.conf")],
            SelfPlayCommand.RunAsync),
        new("node", "Run one member of a SelfPlay cluster with the given roles until it is stopped",
            [Config, Set,
             new("--roles", "ROLE,...", "the roles of this node: " + string.Join(", ", NodeOptions.AllRoles)),
             Seed, new("--port", "N", "the node's port (default 0: a free one)"), Hostname, RunDir, MetricsPort, .. Logging],
            NodeCommand.RunAsync),
        new("eval", "Evaluate a checkpoint (or a search alone) on the held-out split or given tasks; prints {solved, total, rate}",
            [Checkpoint, Config, Set,
             new("--tasks", "FILE", "the task inputs of FILE, one per line (any environment)"),
             new("--puzzles", "FILE", "Tree-of-Thoughts' 24.csv (Game of 24)"),
             new("--range", "A:B", "the rows of --puzzles, a Python-style slice"),
             new("--search", "SEARCH", "greedy (default), a search.algorithm name, or mcts:N (N simulations)"),
             new("--env", "NAME", "this environment instead of environment.type"),
             Plugins,
             new("--policy", "uniform", "search with a uniform random policy over the legal actions (no model)"),
             CliOption.Flag("--show", "print every episode to stderr")],
            SelfPlayCommand.EvalAsync),
        new("inspect", "Read a run's trees back from its journal: a list, one tree, or the pairs per extractor",
            [RunDir, new("--tree", "ID", "print this tree"),
             new("--format", "FORMAT", "text (default), json or dot (Graphviz)"),
             Iteration, CliOption.Flag("--pairs", "the pairs every extractor makes of the trees, with their diagnostics")],
            InspectCommand.RunAsync),
        new("export", "Write a run's trees as JSONL preference data for Python tools",
            [RunDir, new("--format", "FORMAT", "trl-preference, trl-conversational, trl-kto, trl-stepwise or ultrainteract"),
             new("--out", "FILE", "the JSONL file to write"),
             new("--extractor", "NAME", "this extractor instead of the run's preferences.extractor"), Iteration],
            ExportCommand.RunAsync),
        new("report", "Print runs' summary.json as tables (per iteration, and a comparison across runs), optionally plotted",
            [RunDir with { Description = "a run folder (repeatable: one comparison row per run)", Repeats = true },
             new("--format", "FORMAT", "text (default), markdown or json"),
             new("--plot", "FILE", "also draw the runs into FILE.png or FILE.svg")],
            a => Task.FromResult(ReportCommand.Run(a))),
        new("sweep", "Run one campaign per seed and setting, one at a time, then report over them",
            [Config, new("--seeds", "N", "seeds 1..N"),
             Set with { Value = "KEY=V1,V2", Description = "a setting and its comma-separated values to sweep (repeatable)" },
             new("--variant", "\"K=V;K=V\"", "settings that only go together, such as an extractor and its loss (repeatable)", Repeats: true),
             new("--runs-dir", "DIR", "where the run folders go (default runs/sweep-NAME)")],
            SweepCommand.RunAsync),
        new("dashboard", "Serve the live dashboard of a run folder (read-only; a running or finished campaign)",
            [RunDir, new("--host", "ADDRESS", "the listening address (default 127.0.0.1; another needs --token-env)"),
             new("--port", "N", "the port (default 8050; 0: a free one)"),
             new("--token-env", "VAR", "the environment variable holding the bearer token requests must carry")],
            DashboardCommand.RunAsync),
        new("serve", "Serve a checkpoint and its LoRA adapters through an OpenAI-compatible API",
            [Checkpoint, new("--adapter", "NAME=DIR", "a LoRA adapter served as the model NAME (repeatable)", Repeats: true),
             new("--host", "ADDRESS", "the listening address (default 127.0.0.1)"),
             new("--port", "N", "the port (default 8000)"),
             new("--served-model-name", "NAME", "the base model's name in the API (default: the folder's name)"),
             new("--api-key-env", "VAR", "the environment variable holding the API key requests must carry"),
             Device, Dtype,
             new("--prefix-cache-mb", "MB", "the shared-prefix KV cache's size (default 256)"),
             new("--max-batch-rows", "N", "rows per generation batch (default 64)")],
            ServeCommand.RunAsync),
        new("model info", "Print a checkpoint's architecture, sizes, parameter count, weight files and tokenizer",
            [Checkpoint], a => Task.FromResult(ModelCommand.Info(a))),
        new("model tokenize", "Print the ids and tokens of a text under a checkpoint's tokenizer",
            [Checkpoint, new("--text", "TEXT", "the text to tokenize"),
             CliOption.Flag("--special", "add the special tokens the tokenizer's post-processor adds (BOS)")],
            a => Task.FromResult(ModelCommand.Tokenize(a))),
        new("model score", "Print the log-probs of a completion given a prompt",
            [Checkpoint, new("--prompt", "TEXT", "the prompt as text"), new("--completion", "TEXT", "the completion as text"),
             new("--prompt-ids", "1,2,3", "the prompt as token ids"), new("--completion-ids", "4,5", "the completion as token ids"),
             Device, Dtype],
            a => Task.FromResult(ModelCommand.Score(a))),
        new("model merge", "Write a LoRA adapter merged onto its base as a Hugging Face folder",
            [new("--adapter", "DIR", "the adapter folder"), new("--out", "DIR", "the folder to write"),
             Checkpoint with { Value = "BASE", Description = "merge onto this copy of the base (default: the adapter's own base)" }],
            a => Task.FromResult(ModelCommand.Merge(a))),
        new("bench search", "Measure MCTS visits/s and the share of search time outside the model, critic and environment",
            [Config, Set, new("--simulations", "N", "simulations of the visits/s figure (default 200000)"),
             CliOption.Flag("--skip-campaign", "skip the two-iteration campaign of the time-share figure")],
            BenchSearch.RunAsync),
        new("bench learner", "Measure preference training tokens/s against the raw training step, and LoRA against full fine-tuning",
            [new("--pairs", "N", "pairs per batch (default 32)"), new("--steps", "N", "optimizer steps per figure (default 20)"),
             new("--losses", "LIST", "comma-separated pair or list losses (default dpo,step-apo,tpo)"),
             new("--lora-rank", "R", "the LoRA rank of the LoRA figure"), Config, Set],
            a => Task.FromResult(BenchLearner.Run(a))),
        new("bench models", "Measure the KV and prefix caches, sampled generation and training throughput",
            [Checkpoint, Config, Set, new("--puzzles", "N", "tasks of the prefix-cache figure (default 6)")],
            a => Task.FromResult(BenchModels.Run(a))),
        new("bench persistence", "Measure the replay's stores and recoveries against a raw batched INSERT",
            [new("--trees", "N", "trees per figure (default 2000)"), new("--nodes", "N", "nodes per tree (default 40)"),
             new("--rounds", "N", "warm rounds, each against a raw INSERT of its rows; the median ratio is reported (default 5)"),
             new("--warmup-rounds", "N", "untimed rounds before them, until the runtime has optimized the store path (default 20)"),
             new("--recovery-nodes", "N", "nodes of the recovery figure (default 10000)"),
             new("--fresh-processes", "N", "runs of fresh processes (the replay's with its iteration opened ahead, without, a raw INSERT's) of the fresh-process figures; the median run is reported (default 5)"),
             Postgres, new(BenchPersistence.FreshSideOption, "SIDE", "run one side of a fresh-process pair", Hidden: true),
             new(BenchPersistence.FreshStoreOption, "STORE", "its store", Hidden: true), new(BenchPersistence.FreshCodecOption, "CODEC", "its raw table's codec", Hidden: true)],
            BenchPersistence.RunAsync),
        new("bench cluster", "Measure the coordinator and the replay with N search processes, one killed every S seconds",
            [new("--processes", "N", "search processes (default 4)"), new("--workers", "N", "search workers in all (default 256)"),
             new("--tasks", "N", "tasks of the iteration (default 20000)"),
             new("--kill-every", "S", "kill a random search process every S seconds (default 20; 0: none; at least 12)"),
             new("--max-kills", "N", "stop killing after N kills (default 0: no limit)"),
             new("--simulations", "N", "MCTS simulations per task (default 4)"), Postgres, RunDir,
             Seed with { Hidden = true }, CliOption.Flag(BenchCluster.WorkerFlag, "run as one of the search processes", hidden: true)],
            BenchCluster.RunAsync),
        new("bench inference", "Measure batched inference: the same searches at 1 and 16 concurrent searches (and through serve)",
            [Config, Set, new("--trees", "N", "trees per figure (default 32)"),
             new("--concurrency", "LIST", "concurrent searches to compare (default 1,16)"),
             new("--warmup-epochs", "N", "train the policy first (default: random weights)"), Checkpoint,
             CliOption.Flag("--serve", "also run the searches through a selfplay serve server in this process")],
            BenchInference.RunAsync),
        new("completion", "Print a bash completion script (source it; zsh: after bashcompinit)", [], _ =>
        {
            Console.Write(BashCompletion);
            return Task.FromResult(0);
        }),
    ];

    public static CliCommand Find(string path) => All.Single(c => c.Path == path);

    /// <summary>Completes through the program's own [suggest] directive, as dotnet-suggest's shim does.</summary>
    const string BashCompletion = """
        _selfplay_complete() {
            local IFS=$'\n'
            COMPREPLY=( $(selfplay "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null) )
        }
        complete -o default -F _selfplay_complete selfplay

        """;

    /// <summary>No response files (a value may start with @) and no POSIX bundles (a value may start with -).</summary>
    public static readonly ParserConfiguration Parser = new() { ResponseFileTokenReplacer = null, EnablePosixBundling = false };

    public static IReadOnlyDictionary<string, Option> AddOptions(Command command, IReadOnlyList<CliOption> options)
    {
        var bound = new Dictionary<string, Option>();
        foreach (var o in options)
        {
            Option option = o.Value is null
                ? new Option<bool>(o.Name) { Arity = ArgumentArity.Zero }
                : new Option<string[]>(o.Name) { HelpName = o.Value, Arity = ArgumentArity.OneOrMore, AllowMultipleArgumentsPerToken = false };
            option.Description = o.Description;
            option.Hidden = o.Hidden;
            command.Options.Add(option);
            bound[o.Name] = option;
        }
        return bound;
    }

    /// <summary>The program's commands as System.CommandLine's tree, and which table row each leaf is.</summary>
    public static (RootCommand Root, IReadOnlyDictionary<Command, (CliCommand Spec, IReadOnlyDictionary<string, Option> Options)> Leaves) Build()
    {
        var root = new RootCommand("SelfPlay: tree-search self-play for language models, run by Akka.NET actors.") { HelpName = "selfplay" };
        var leaves = new Dictionary<Command, (CliCommand, IReadOnlyDictionary<string, Option>)>();
        foreach (var spec in All)
        {
            Command parent = root;
            var words = spec.Path.Split(' ');
            foreach (var group in words[..^1])
                parent = parent.Subcommands.FirstOrDefault(c => c.Name == group)
                         ?? Add(parent, new Command(group, group == "bench" ? "Benchmarks; each prints JSON" : "Look into, score and merge checkpoints"));
            var command = Add(parent, new Command(words[^1], spec.Description));
            leaves[command] = (spec, AddOptions(command, spec.Options));
        }
        return (root, leaves);

        static Command Add(Command parent, Command child)
        {
            parent.Subcommands.Add(child);
            return child;
        }
    }

    /// <summary>The first thing wrong with a command line, in one line (null: nothing).</summary>
    public static string? FirstError(ParseResult result, string command)
    {
        var help = command.Length > 0 ? $" (see selfplay {command} --help)" : "";
        if (result.UnmatchedTokens.FirstOrDefault() is { } token)
            return token.StartsWith('-') ? $"unknown option '{token}'{help}" : $"unexpected argument '{token}'{help}";
        return result.Errors.FirstOrDefault() switch
        {
            null => null,
            { SymbolResult: System.CommandLine.Parsing.OptionResult { Tokens.Count: 0 } option } => $"{option.Option.Name} needs a value{help}",
            var error => error.Message.ReplaceLineEndings(" ").TrimEnd('.') + help,
        };
    }

    /// <summary>Parses and runs a command line: help, completions, one-line usage errors, then the command.</summary>
    public static async Task<int> InvokeAsync(string[] args)
    {
        var (root, leaves) = Build();
        var result = root.Parse(args, Parser);
        if (result.Action is HelpAction || result.GetResult(root.Directives.OfType<SuggestDirective>().First()) is not null)
        {
            var code = await result.InvokeAsync();
            if (result.Action is HelpAction && result.CommandResult.Command == root)
                Console.WriteLine("Every command with its options (selfplay COMMAND --help describes them):\n" + Synopsis());
            return code;
        }
        var path = PathOf(result.CommandResult.Command);
        var prefix = path.Length > 0 ? path + " " : "";
        if (result.UnmatchedTokens.FirstOrDefault() is { } first && !first.StartsWith('-') && result.CommandResult.Command.Subcommands.Count > 0)
            throw new UsageException($"unknown command '{prefix}{first}' (see selfplay {prefix}--help)");
        if (!leaves.TryGetValue(result.CommandResult.Command, out var leaf))
            throw new UsageException(path.Length == 0 ? "no command given (see selfplay --help)" : $"selfplay {path} needs a command (see selfplay {path} --help)");
        if (FirstError(result, path) is { } error) throw new UsageException(error);
        return await leaf.Spec.Run(new CliArgs(result, leaf.Options));
    }

    /// <summary>"bench cluster" for that command; "" for the root.</summary>
    static string PathOf(Command command) =>
        command is RootCommand ? ""
        : command.Parents.OfType<Command>().FirstOrDefault() is { } parent and not RootCommand ? PathOf(parent) + " " + command.Name
        : command.Name;

    /// <summary>Every command's synopsis, from the table (so it cannot drift from what the parser takes).</summary>
    public static string Synopsis() =>
        string.Join("\n", All.Select(c => string.Join(" ", c.Options.Where(o => !o.Hidden)
            .Select(o => "[" + o.Name + (o.Value is null ? "" : " " + o.Value) + "]" + (o.Repeats ? "..." : "")).Prepend($"  selfplay {c.Path}")))) + "\n";
}

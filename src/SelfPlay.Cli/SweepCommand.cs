using System.Diagnostics;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Configuration;

namespace SelfPlay.Cli;

/// <summary>
/// <c>selfplay sweep --config FILE --seeds N [--set key=v1,v2]... [--variant "k=v;k=v"]... [--runs-dir DIR]</c>: one
/// campaign per seed (1..N) for every combination of the comma-separated values and of the variants (settings that
/// only make sense together, such as an extractor and its loss), one at a time, each a `selfplay run` process of its
/// own in DIR/NAME-seedS (NAME: the config's name and the varied values). Settings with one value apply to every run.
/// Runs of one seed whose warm-up and model settings are the same share the first one's warm-up
/// (warmup.from-checkpoint): it is the same training, done once. A run folder whose campaign completed is kept (a sweep
/// that stopped is started again with the same command), one that did not is resumed. Ends with `report` over the
/// runs: per setting, mean and range over the seeds.
/// </summary>
public static class SweepCommand
{
    public static async Task<int> RunAsync(CliArgs a)
    {
        var configFile = a.Get("--config") ?? throw new UsageException("sweep needs --config FILE");
        var seedsText = a.Get("--seeds") ?? throw new UsageException("sweep needs --seeds N");
        if (!int.TryParse(seedsText, out var seeds) || seeds < 1) throw new UsageException($"--seeds must be a positive number, got '{seedsText}'");
        var (fixedSets, varied) = Split(a.All("--set"));
        var name = ConfigLoader.Parse(ConfigLoader.Build(configFile, fixedSets)).Name;
        var root = a.Get("--runs-dir") ?? Path.Combine("runs", "sweep-" + name);
        var variants = a.All("--variant").Select(Variant).ToList();
        if (variants.Count > 0) varied.Add(("", [.. variants.Select((_, i) => i.ToString(System.Globalization.CultureInfo.InvariantCulture))]));
        // Every combination is checked before any run starts.
        var plans = new List<(string Label, List<string> Sets, string WarmupKey)>();
        foreach (var combination in Combinations(varied))
        {
            var settings = combination.SelectMany(kv => kv.Key.Length > 0 ? [kv] : variants[int.Parse(kv.Value, System.Globalization.CultureInfo.InvariantCulture)]).ToList();
            var label = settings.Count == 0 ? name : name + "-" + string.Join("-", settings.Select(kv => Slug(kv.Value)));
            var sets = fixedSets.Concat(settings.Select(kv => $"{kv.Key}={kv.Value}")).Append($"name={label}").ToList();
            var config = ConfigLoader.Parse(ConfigLoader.Build(configFile, sets));
            plans.Add((label, sets, config.Warmup.FromCheckpoint.Length > 0 ? "" : $"{config.Warmup} {config.Model} {config.Policy} {config.Environment}"));
        }
        var runs = new List<string>();
        for (var seed = 1; seed <= seeds; seed++)
        {
            var warmups = new Dictionary<string, string>();
            foreach (var (label, sets, warmupKey) in plans)
            {
                var runDir = Path.Combine(root, $"{label}-seed{seed}");
                var shared = warmupKey.Length > 0 && warmups.TryGetValue(warmupKey, out var first) ? [$"warmup.from-checkpoint={first}"] : Array.Empty<string>();
                runs.Add(await RunOne(configFile, [.. sets, .. shared, $"seed={seed}"], runDir));
                var v0 = Path.GetFullPath(Path.Combine(runDir, "checkpoints", "v0"));
                if (warmupKey.Length > 0 && !warmups.ContainsKey(warmupKey) && Directory.Exists(v0)) warmups[warmupKey] = v0;
            }
        }
        return ReportCommand.Run(CliArgs.Parse([.. runs.SelectMany(r => new[] { "--run-dir", r })], CliCommands.Find("report").Options));
    }

    /// <summary>A --variant: settings separated by ';', each key=value (one value).</summary>
    static List<KeyValuePair<string, string>> Variant(string text)
    {
        var settings = text.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(s =>
        {
            var eq = s.IndexOf('=');
            if (eq <= 0 || eq == s.Length - 1) throw new UsageException($"--variant expects key=value;key=value, got '{text}'");
            return new KeyValuePair<string, string>(s[..eq].Trim(), s[(eq + 1)..].Trim());
        }).ToList();
        if (settings.Count == 0) throw new UsageException("--variant has no setting");
        if (settings.Any(kv => kv.Key is "seed" or "name")) throw new UsageException("sweep sets seed and name itself (--seeds N; the name is the config's and the varied values)");
        return settings;
    }

    /// <summary>Settings with one value, and those with several (key, values).</summary>
    static (List<string> Fixed, List<(string Key, string[] Values)> Varied) Split(IEnumerable<string> sets)
    {
        var fixedSets = new List<string>();
        var varied = new List<(string, string[])>();
        foreach (var set in sets)
        {
            var eq = set.IndexOf('=');
            if (eq <= 0) throw new UsageException($"--set expects key=value[,value...], got '{set}'");
            var values = set[(eq + 1)..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (values.Length == 0) throw new UsageException($"--set {set[..eq]} has no value");
            if (values.Length == 1) fixedSets.Add(set);
            else varied.Add((set[..eq].Trim(), values));
        }
        if (fixedSets.Any(s => s.StartsWith("seed=", StringComparison.Ordinal) || s.StartsWith("name=", StringComparison.Ordinal)))
            throw new UsageException("sweep sets seed and name itself (--seeds N; the name is the config's and the varied values)");
        return (fixedSets, varied);
    }

    static IEnumerable<List<KeyValuePair<string, string>>> Combinations(IReadOnlyList<(string Key, string[] Values)> varied)
    {
        IEnumerable<List<KeyValuePair<string, string>>> result = [[]];
        foreach (var (key, values) in varied)
            result = result.SelectMany(c => values.Select(v => new List<KeyValuePair<string, string>>(c) { new(key, v) })).ToList();
        return result;
    }

    static string Slug(string value) => new([.. value.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_')]);

    /// <summary>One campaign, as its own process; a completed run folder is kept, an unfinished one resumed.</summary>
    static async Task<string> RunOne(string configFile, IReadOnlyList<string> sets, string runDir)
    {
        var summary = Path.Combine(runDir, CampaignSummary.FileName);
        var done = File.Exists(summary) && CampaignSummary.Read(runDir).Status == "completed";
        if (done)
        {
            Console.WriteLine($"sweep: {runDir} completed earlier, kept");
            return runDir;
        }
        var resume = File.Exists(Path.Combine(runDir, "config.conf"));
        string[] arguments = resume
            ? ["run", "--resume", "--run-dir", runDir]
            : ["run", "--config", configFile, .. sets.SelectMany(s => new[] { "--set", s }), "--run-dir", runDir];
        Console.WriteLine($"sweep: {(resume ? "resuming" : "running")} {runDir}");
        var start = new ProcessStartInfo(Environment.ProcessPath ?? "dotnet");
        // Under `dotnet selfplay.dll` the process is dotnet itself: hand it the program again.
        if (Path.GetFileNameWithoutExtension(start.FileName) == "dotnet") start.ArgumentList.Add(typeof(SweepCommand).Assembly.Location);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new IOException("cannot start selfplay run");
        await process.WaitForExitAsync();
        if (process.ExitCode != 0) Console.Error.WriteLine($"selfplay: sweep: {runDir} ended with exit code {process.ExitCode} (kept in the report)");
        return runDir;
    }
}

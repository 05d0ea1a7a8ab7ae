using System.Text.Json;
using Akka.Actor;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Hosting;
using SelfPlay.Actors.Learning;
using SelfPlay.Actors.Replay;
using SelfPlay.Core.Preferences;

namespace SelfPlay.Cli;

/// <summary>
/// `selfplay export`: a run's trees, read back from its journal, as JSONL preference data for Python tools
/// (trl-preference, trl-conversational, trl-kto, trl-stepwise, ultrainteract), extracted with the run's preferences.* settings (or --extractor).
/// The same files train here through learner.import.
/// </summary>
public static class ExportCommand
{
    public static async Task<int> RunAsync(CliArgs a)
    {
        var runDir = a.Get("--run-dir") ?? throw new UsageException("export needs --run-dir DIR");
        var format = a.Get("--format") ?? throw new UsageException($"export needs --format ({string.Join("|", PreferenceFormats.Names)})");
        if (!PreferenceFormats.Names.Contains(format)) throw new UsageException($"--format must be one of {string.Join(", ", PreferenceFormats.Names)}, got '{format}'");
        var output = a.Get("--out") ?? throw new UsageException("export needs --out FILE");
        int? iteration = a.Get("--iteration") is { } it ? int.TryParse(it, out var i) && i > 0 ? i : throw new UsageException($"--iteration must be a positive number, got '{it}'") : null;
        var configFile = Path.Combine(runDir, "config.conf");
        if (!File.Exists(configFile)) throw new UsageException($"{runDir} is not a run folder (no config.conf)");
        var config = ConfigLoader.Parse(ConfigLoader.Build(configFile, []));
        var preferences = a.Get("--extractor") is { } name ? config.Preferences with { Extractor = name } : config.Preferences;
        if (Extractors.All.All(e => e.Name != preferences.Extractor))
            throw new UsageException($"--extractor must be one of {string.Join(", ", Extractors.All.Select(e => e.Name))}, got '{preferences.Extractor}'");

        var system = ActorSystem.Create("export", SelfPlayHost.AkkaConfig(config.Persistence, runDir, serilog: false));
        try
        {
            var trees = iteration is { } n ? await TreeQueries.IterationTreesAsync(system, config.Name, n) : await TreeQueries.CampaignTreesAsync(system, config.Name);
            // As in the configuration: SPaR's whole-response nodes read right only as SPaR pairs.
            if (preferences.Extractor != "spar" && trees.Any(t => t.Algorithm == "spar"))
                throw new UsageException($"{runDir} holds SPaR trees (whole responses), which only --extractor spar reads, got '{preferences.Extractor}'");
            var examples = PreferenceLearning.Extract(trees, preferences, config.Seed);
            var lines = PreferenceFormats.Export(examples, format, config.Environment.Type, config.Name, ChatTurns(config)).ToList();
            var directory = Path.GetDirectoryName(Path.GetFullPath(output));
            if (directory is not null) Directory.CreateDirectory(directory);
            await File.WriteAllLinesAsync(output, lines);
            Console.WriteLine(JsonSerializer.Serialize(new { trees = trees.Count, examples = examples.Count, records = lines.Count, format, output }));
        }
        finally
        {
            await system.Terminate();
        }
        return 0;
    }

    /// <summary>The run's chat format as a turn reader (null without one), for the conversational format.</summary>
    static Func<string, IReadOnlyList<(string Role, string Content)>>? ChatTurns(SelfPlay.Core.Config.CampaignConfig config)
    {
        SelfPlay.Models.Tokenization.ChatTemplate? template;
        try { template = CampaignContext.ChatFormatOf(config); }
        catch (ConfigException e) { throw new UsageException($"the run's chat format: {e.Message}"); }
        return template is null ? null : text => [.. template.Parse(text).Select(m => (m.Role, m.Content))];
    }
}

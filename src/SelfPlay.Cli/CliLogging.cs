using Serilog;
using Serilog.Events;

namespace SelfPlay.Cli;

/// <summary>
/// The log of `run` and `node`: a file in the run folder (--log-format text, or json: Serilog's compact JSON, one
/// event per line with its properties) at --log-level (verbose, debug, information, warning, error; default
/// information), and warnings on the console.
/// </summary>
public static class CliLogging
{
    public static ILogger Create(string file, CliArgs a, Func<LoggerConfiguration, LoggerConfiguration>? enrich = null)
    {
        var level = a.Get("--log-level") ?? "information";
        var minimum = level switch
        {
            "verbose" => LogEventLevel.Verbose,
            "debug" => LogEventLevel.Debug,
            "information" => LogEventLevel.Information,
            "warning" => LogEventLevel.Warning,
            "error" => LogEventLevel.Error,
            _ => throw new UsageException($"--log-level must be verbose, debug, information, warning or error, got '{level}'"),
        };
        var format = a.Get("--log-format") ?? "text";
        if (format is not ("text" or "json")) throw new UsageException($"--log-format must be text or json, got '{format}'");
        var config = new LoggerConfiguration().MinimumLevel.Is(minimum);
        config = enrich?.Invoke(config) ?? config;
        config = format == "json" ? config.WriteTo.File(new Serilog.Formatting.Compact.CompactJsonFormatter(), file) : config.WriteTo.File(file);
        return config.WriteTo.Console(restrictedToMinimumLevel: LogEventLevel.Warning).CreateLogger();
    }
}

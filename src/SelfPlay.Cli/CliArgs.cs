using System.CommandLine;

namespace SelfPlay.Cli;

/// <summary>A usage problem: reported in one line with exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>One option of a command, for the parser and for --help: its name, the value it takes (null: a flag) and what it does.</summary>
public sealed record CliOption(string Name, string? Value, string Description, bool Repeats = false, bool Hidden = false)
{
    public static CliOption Flag(string name, string description, bool hidden = false) => new(name, null, description, Hidden: hidden);
}

/// <summary>
/// The options a command was given, read from System.CommandLine's parse of the whole command line. Every value
/// option collects its occurrences (a single-valued one answers the last); a name its command does not declare is a
/// programming error, not a usage one.
/// </summary>
public sealed class CliArgs
{
    readonly ParseResult _result;
    readonly IReadOnlyDictionary<string, Option> _options;

    public CliArgs(ParseResult result, IReadOnlyDictionary<string, Option> options) => (_result, _options) = (result, options);

    /// <summary>Parses <paramref name="args"/> as the options of one command alone (tests, and commands that run a part of another).</summary>
    public static CliArgs Parse(IReadOnlyList<string> args, IReadOnlyList<CliOption> options)
    {
        var command = new RootCommand();
        var bound = CliCommands.AddOptions(command, options);
        var result = command.Parse(args, CliCommands.Parser);
        if (CliCommands.FirstError(result, "") is { } error) throw new UsageException(error);
        return new CliArgs(result, bound);
    }

    Option Option(string name) => _options.TryGetValue(name, out var o) ? o : throw new InvalidOperationException($"the command declares no option {name}");

    public string? Get(string name) => All(name) is { Count: > 0 } v ? v[^1] : null;
    public IReadOnlyList<string> All(string name) => _result.GetValue((Option<string[]>)Option(name)) ?? [];
    public bool Has(string name) => _result.GetValue((Option<bool>)Option(name));

    public int PositiveInt(string name, int fallback) =>
        Get(name) is not { } s ? fallback : int.TryParse(s, out var n) && n > 0 ? n : throw new UsageException($"{name} must be a positive integer, got '{s}'");

    public int NonNegativeInt(string name, int fallback) =>
        Get(name) is not { } s ? fallback : int.TryParse(s, out var n) && n >= 0 ? n : throw new UsageException($"{name} must be a non-negative integer, got '{s}'");
}

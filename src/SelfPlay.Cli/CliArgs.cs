namespace SelfPlay.Cli;

/// <summary>A usage problem: reported in one line with exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>Minimal option parser: --name value or --name=value, repeated options, and flags. Unknown options are errors.</summary>
public sealed class CliArgs
{
    readonly Dictionary<string, List<string>> _values = [];
    readonly HashSet<string> _flags = [];

    public CliArgs(IEnumerable<string> args, IReadOnlyCollection<string> options, IReadOnlyCollection<string> flags)
    {
        // --name=value is --name value (for an option that takes a value).
        var list = args.SelectMany(x => x.StartsWith("--", StringComparison.Ordinal) && x.IndexOf('=') is var eq and > 2 && options.Contains(x[..eq])
            ? new[] { x[..eq], x[(eq + 1)..] } : [x]).ToList();
        for (var i = 0; i < list.Count; i++)
        {
            var name = list[i];
            if (flags.Contains(name)) { _flags.Add(name); continue; }
            if (!options.Contains(name))
                throw new UsageException($"unknown option '{name}' (expected: {string.Join(" ", options.Concat(flags))})");
            if (i + 1 >= list.Count) throw new UsageException($"{name} needs a value");
            if (!_values.TryGetValue(name, out var values)) _values[name] = values = [];
            values.Add(list[++i]);
        }
    }

    public string? Get(string name) => _values.TryGetValue(name, out var v) ? v[^1] : null;
    public IReadOnlyList<string> All(string name) => _values.TryGetValue(name, out var v) ? v : [];
    public bool Has(string name) => _flags.Contains(name);

    public int PositiveInt(string name, int fallback) =>
        Get(name) is not { } s ? fallback : int.TryParse(s, out var n) && n > 0 ? n : throw new UsageException($"{name} must be a positive integer, got '{s}'");
}

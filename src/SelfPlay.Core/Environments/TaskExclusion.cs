namespace SelfPlay.Core.Environments;

/// <summary>
/// environment.exclude-file: task inputs that a campaign must never train on (a published test set), one per line
/// (blank lines and lines starting with # are skipped). Inputs match in canonical form: whitespace collapsed, and an
/// input made only of numbers compared as the sorted numbers ("10 6 5 4" is Game of 24's "4 5 6 10").
/// </summary>
public static class TaskExclusion
{
    public static string Canonical(string input)
    {
        var parts = input.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        var numbers = parts.Select(p => double.TryParse(p, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : (double?)null).ToList();
        return numbers.All(n => n is not null)
            ? string.Join(" ", numbers.Select(n => n!.Value).Order().Select(n => n.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))
            : string.Join(" ", parts);
    }

    /// <summary>The canonical inputs of the file, or null when none is configured; a missing file is a one-line error.</summary>
    public static HashSet<string>? Load(string file)
    {
        if (file.Length == 0) return null;
        return TaskFile.Inputs(file, "environment.exclude-file").Select(Canonical).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>The setup without the excluded training tasks (held-out tasks stay: evaluating on them is not training).</summary>
    public static EnvironmentSetup Apply(EnvironmentSetup setup, string file)
    {
        if (Load(file) is not { } excluded) return setup;
        var train = setup.Train.Where(t => !excluded.Contains(Canonical(t.Input))).ToList();
        return setup with { Train = train, ExcludedTasks = setup.Train.Count - train.Count };
    }
}

/// <summary>A file of task inputs, one per line (blank lines and lines starting with # are skipped): what
/// environment.exclude-file and `eval --tasks` read, for any environment.</summary>
public static class TaskFile
{
    /// <param name="what">what the file is, for the one-line error when it is missing</param>
    public static IReadOnlyList<string> Inputs(string file, string what)
    {
        if (!File.Exists(file)) throw new ArgumentException($"{what} not found: {file}");
        return File.ReadLines(file).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
    }

    /// <summary>The inputs as tasks, with ids by line order (task-0, task-1, ...).</summary>
    public static IReadOnlyList<EnvTask> Tasks(string file, string what) => Inputs(file, what).Select((input, i) => new EnvTask($"task-{i}", input)).ToList();
}

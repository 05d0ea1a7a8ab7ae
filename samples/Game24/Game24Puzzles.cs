using System.Globalization;

namespace SelfPlay.Samples.Game24;

/// <summary>Puzzle sets: the seeded train / held-out split of the solvable puzzles, text format, and the ToT 24.csv.</summary>
public static class Game24Puzzles
{
    private static readonly Lazy<int[][]> SolvablePuzzles =
        new(() => Game24Solver.AllPuzzles().Where(Game24Solver.IsSolvable).ToArray());

    /// <summary>
    /// Shuffles the 1,362 solvable puzzles with System.Random(seed) (Fisher-Yates); the first
    /// <paramref name="heldOutCount"/> are held out, the rest are for training.
    /// </summary>
    public static (IReadOnlyList<int[]> Train, IReadOnlyList<int[]> HeldOut) Split(int seed, int heldOutCount)
    {
        var puzzles = SolvablePuzzles.Value.Select(p => (int[])p.Clone()).ToArray();
        if (heldOutCount < 0 || heldOutCount > puzzles.Length)
            throw new ArgumentOutOfRangeException(nameof(heldOutCount), heldOutCount,
                $"must be between 0 and {puzzles.Length}");
        var random = new Random(seed);
        for (var i = puzzles.Length - 1; i > 0; i--)
        {
            var j = random.Next(i + 1);
            (puzzles[i], puzzles[j]) = (puzzles[j], puzzles[i]);
        }
        return (puzzles[heldOutCount..], puzzles[..heldOutCount]);
    }

    /// <summary>"4 5 6 10".</summary>
    public static string Format(int[] puzzle)
    {
        ArgumentNullException.ThrowIfNull(puzzle);
        return string.Join(' ', puzzle);
    }

    /// <summary>Four integers in 1..13 separated by spaces, in the order given.</summary>
    public static int[] Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length != 4) throw new FormatException($"a puzzle is 4 numbers in 1..13 separated by spaces, got '{Shorten(text)}'");
        var puzzle = new int[4];
        for (var i = 0; i < 4; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out puzzle[i]) ||
                puzzle[i] < 1 || puzzle[i] > 13)
                throw new FormatException($"a puzzle is 4 numbers in 1..13 separated by spaces, got '{Shorten(text)}'");
        }
        return puzzle;
    }

    /// <summary>
    /// Reads the Tree-of-Thoughts 24.csv (header "Rank,Puzzles,...", rows "1,1 1 4 6,4.4,..."). <paramref name="range"/>
    /// is "A:B" over the data rows like a Python slice (0-based, B exclusive; "A:" and ":B" allowed); null or empty
    /// means all rows.
    /// </summary>
    public static IReadOnlyList<int[]> LoadCsv(string path, string? range)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"puzzle file not found: {path}", path);
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0 || !lines[0].StartsWith("Rank,Puzzles", StringComparison.Ordinal))
            throw new FormatException($"{path}: the first line must be the header 'Rank,Puzzles,...'");

        var rows = new List<int[]>(lines.Length);
        for (var i = 1; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            var fields = lines[i].Split(',');
            try
            {
                if (fields.Length < 2) throw new FormatException("expected 'rank,puzzle,...'");
                rows.Add(Parse(fields[1]));
            }
            catch (FormatException e)
            {
                throw new FormatException($"{path} line {i + 1}: {e.Message}", e);
            }
        }

        var (start, end) = ParseRange(range, rows.Count);
        return rows.GetRange(start, end - start);
    }

    private static (int Start, int End) ParseRange(string? range, int count)
    {
        if (string.IsNullOrWhiteSpace(range)) return (0, count);
        var parts = range.Split(':');
        if (parts.Length != 2) throw new FormatException($"range must be 'A:B', 'A:' or ':B', got '{Shorten(range)}'");
        var start = 0;
        var end = count;
        if ((parts[0].Trim().Length > 0 && !int.TryParse(parts[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out start)) ||
            (parts[1].Trim().Length > 0 && !int.TryParse(parts[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out end)))
            throw new FormatException($"range bounds must be non-negative integers, got '{Shorten(range)}'");
        if (start > end) throw new ArgumentException($"range start {start} is after its end {end}", nameof(range));
        if (end > count) throw new ArgumentException($"range end {end} is beyond the {count} rows", nameof(range));
        return (start, end);
    }

    private static string Shorten(string text)
    {
        var oneLine = text.ReplaceLineEndings(" ");
        return oneLine.Length > 40 ? oneLine[..40] + "..." : oneLine;
    }
}

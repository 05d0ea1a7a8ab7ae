namespace SelfPlay.Core.Search;

/// <summary>
/// Deterministic seed derivation. HashCode.Combine and string.GetHashCode are randomised per process in .NET,
/// so they must never feed a seed: the same campaign seed has to give the same trees in every run.
/// </summary>
public static class Seeds
{
    /// <summary>SplitMix64 over the parts: well mixed, stable across processes and platforms.</summary>
    public static long Mix(params long[] parts)
    {
        var x = 0x9E3779B97F4A7C15UL;
        foreach (var part in parts)
        {
            x += unchecked((ulong)part) + 0x9E3779B97F4A7C15UL;
            var z = x;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            x = z ^ (z >> 31);
        }
        return (long)(x & long.MaxValue);
    }

    /// <summary>FNV-1a of the string's UTF-16 code units: a stable string hash for seeding.</summary>
    public static long Of(string text)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in text)
        {
            hash ^= c;
            hash *= 1099511628211UL;
        }
        return (long)(hash & long.MaxValue);
    }
}

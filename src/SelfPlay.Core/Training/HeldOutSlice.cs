namespace SelfPlay.Core.Training;

/// <summary>
/// A held-out slice by group: the items of one group (a tree's examples share their prefixes, so splitting inside a tree
/// would leak) are all held out or all kept. Groups are drawn in ordinal order of their key, one draw each from
/// <paramref name="random"/>, so the split depends on the groups and the seed only, not on the items' order.
/// </summary>
public static class HeldOutSlice
{
    public static (List<T> Train, List<T> HeldOut) Split<T>(IEnumerable<T> items, Func<T, string> groupOf, double share, Random random)
    {
        List<T> train = [], heldOut = [];
        foreach (var group in items.GroupBy(groupOf).OrderBy(g => g.Key, StringComparer.Ordinal))
            (random.NextDouble() < share ? heldOut : train).AddRange(group);
        return (train, heldOut);
    }
}

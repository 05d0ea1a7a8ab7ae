using TorchSharp;
using static TorchSharp.torch;

namespace SelfPlay.Models.Generation;

/// <summary>
/// Keys and values of token prefixes already forwarded, in a radix tree keyed by token ids (as SGLang's
/// RadixAttention): every edge holds a run of tokens and their KV per layer [kvHeads, run, headDim]. Expanding
/// siblings or deeper nodes of a search tree looks up the longest cached prefix of the prompt and forwards only the
/// rest. A memory budget bounds the stored tensors; the least recently used leaves are evicted first.
/// Not thread-safe: the owner (one inference actor, one thread) calls it. Valid for one set of weights only.
/// </summary>
public sealed class PrefixCache(long budgetBytes) : IDisposable
{
    sealed class Node(Node? parent, int[] tokens, Tensor[] keys, Tensor[] values)
    {
        public Node? Parent = parent;
        public int[] Tokens = tokens;
        public Tensor[] Keys = keys, Values = values;
        public readonly Dictionary<int, Node> Children = [];
        public long LastUsed;
        public long Bytes => Keys.Sum(k => k.numel() * k.ElementSize) * 2;
    }

    readonly Node _root = new(null, [], [], []);
    long _clock;

    public long BudgetBytes { get; } = budgetBytes > 0 ? budgetBytes : throw new ArgumentException("prefix cache budget must be positive");
    public long Bytes { get; private set; }
    public long CachedTokens { get; private set; }
    public int Evictions { get; private set; }

    /// <summary>Tensors the cache holds (K and V per layer per edge), for memory accounting.</summary>
    public int TensorCount
    {
        get
        {
            var count = 0;
            var stack = new Stack<Node>([_root]);
            while (stack.Count > 0)
            {
                var n = stack.Pop();
                count += n.Keys.Length + n.Values.Length;
                foreach (var c in n.Children.Values) stack.Push(c);
            }
            return count;
        }
    }

    /// <summary>
    /// The longest cached prefix of <paramref name="tokens"/>, at most <paramref name="maxLength"/> long: its length and
    /// its KV per layer [kvHeads, length, headDim] (new tensors owned by the caller's dispose scope); null when nothing matches.
    /// </summary>
    public (int Length, Tensor[] Keys, Tensor[] Values)? Lookup(IReadOnlyList<int> tokens, int maxLength)
    {
        var segments = new List<(Node Node, int Take)>();
        var node = _root;
        var matched = 0;
        var now = ++_clock;
        while (matched < maxLength && node.Children.TryGetValue(tokens[matched], out var child))
        {
            var take = 0;
            while (take < child.Tokens.Length && matched + take < maxLength && child.Tokens[take] == tokens[matched + take]) take++;
            child.LastUsed = now;
            segments.Add((child, take));
            matched += take;
            if (take < child.Tokens.Length) break;
            node = child;
        }
        if (matched == 0) return null;
        var layers = segments[0].Node.Keys.Length;
        Tensor Join(Func<Node, Tensor[]> pick, int layer) => segments.Count == 1
            ? pick(segments[0].Node)[layer].narrow(1, 0, segments[0].Take)
            : cat(segments.Select(s => pick(s.Node)[layer].narrow(1, 0, s.Take)).ToArray(), 1);
        return (matched,
            Enumerable.Range(0, layers).Select(l => Join(n => n.Keys, l)).ToArray(),
            Enumerable.Range(0, layers).Select(l => Join(n => n.Values, l)).ToArray());
    }

    /// <summary>
    /// Stores the KV of <paramref name="tokens"/> (per layer [kvHeads, tokens, headDim]); only the part not yet cached is
    /// copied. Then evicts least recently used leaves until the budget holds.
    /// </summary>
    public void Insert(IReadOnlyList<int> tokens, Tensor[] keys, Tensor[] values)
    {
        var node = _root;
        var at = 0;
        var now = ++_clock;
        while (at < tokens.Count)
        {
            if (!node.Children.TryGetValue(tokens[at], out var child))
            {
                var length = tokens.Count - at;
                var leaf = new Node(node, [.. tokens.Skip(at)], Slice(keys, at, length), Slice(values, at, length)) { LastUsed = now };
                node.Children[tokens[at]] = leaf;
                Bytes += leaf.Bytes;
                CachedTokens += length;
                break;
            }
            var common = 0;
            while (common < child.Tokens.Length && at + common < tokens.Count && child.Tokens[common] == tokens[at + common]) common++;
            if (common < child.Tokens.Length) Split(child, common);
            child.LastUsed = now;
            node = child;
            at += common;
        }
        Evict();
    }

    static Tensor[] Slice(Tensor[] perLayer, int start, int length) =>
        perLayer.Select(t => t.narrow(1, start, length).clone().DetachFromDisposeScope()).ToArray();

    /// <summary>Cuts an edge after <paramref name="at"/> tokens: the node keeps the head, a new child the tail.</summary>
    void Split(Node node, int at)
    {
        var tail = new Node(node, node.Tokens[at..], Slice(node.Keys, at, node.Tokens.Length - at), Slice(node.Values, at, node.Tokens.Length - at))
        {
            LastUsed = node.LastUsed,
        };
        foreach (var (first, grandChild) in node.Children)
        {
            tail.Children[first] = grandChild;
            grandChild.Parent = tail;
        }
        node.Children.Clear();
        node.Children[tail.Tokens[0]] = tail;
        var head = (Slice(node.Keys, 0, at), Slice(node.Values, 0, at));
        Dispose(node);
        (node.Keys, node.Values) = head;
        node.Tokens = node.Tokens[..at];
    }

    void Evict()
    {
        if (Bytes <= BudgetBytes) return;
        var leaves = new PriorityQueue<Node, long>();
        var stack = new Stack<Node>([_root]);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            foreach (var c in n.Children.Values) stack.Push(c);
            if (n != _root && n.Children.Count == 0) leaves.Enqueue(n, n.LastUsed);
        }
        while (Bytes > BudgetBytes && leaves.TryDequeue(out var leaf, out _))
        {
            var parent = leaf.Parent!;
            parent.Children.Remove(leaf.Tokens[0]);
            Bytes -= leaf.Bytes;
            CachedTokens -= leaf.Tokens.Length;
            Dispose(leaf);
            Evictions++;
            if (parent != _root && parent.Children.Count == 0) leaves.Enqueue(parent, parent.LastUsed);
        }
    }

    static void Dispose(Node node)
    {
        foreach (var t in node.Keys) t.Dispose();
        foreach (var t in node.Values) t.Dispose();
    }

    public void Clear()
    {
        var stack = new Stack<Node>(_root.Children.Values);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            foreach (var c in n.Children.Values) stack.Push(c);
            Dispose(n);
        }
        _root.Children.Clear();
        Bytes = 0;
        CachedTokens = 0;
    }

    public void Dispose() => Clear();
}

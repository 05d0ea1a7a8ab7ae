using System.Buffers.Binary;
using System.Runtime.Serialization;
using System.Text;
using SelfPlay.Core.Trees;

namespace SelfPlay.Actors.Protocol;

/// <summary>
/// The compact binary form of a <see cref="PreferenceTree"/> (manifests "*.v2"): varints, packed token ids and
/// float32 log-probs, a per-tree string table (a step text repeated across nodes is written once), and a per-node
/// field mask so that a field at its default costs nothing. Index, Depth and Children are derived from the parents
/// (written explicitly only for a node where they differ), so the decoded tree equals the encoded one field for field.
/// A corrupt payload is a one-line <see cref="SerializationException"/>; no count is trusted beyond the bytes left.
/// </summary>
public static class TreeBinary
{
    const byte FormatVersion = 2;

    [Flags]
    enum Field : uint
    {
        Action = 1 << 0, StepText = 1 << 1, TokenIds = 1 << 2, LogProbs = 1 << 3, Prior = 1 << 4, Visits = 1 << 5,
        ValueSum = 1 << 6, Q = 1 << 7, V = 1 << 8, Value = 1 << 9, IsTerminal = 1 << 10, TerminalReward = 1 << 11,
        TerminalReason = 1 << 12, CriticScores = 1 << 13, PolicyVersion = 1 << 14, Critic = 1 << 15, CreatedAtMs = 1 << 16,
        WallMs = 1 << 17, GeneratedTokens = 1 << 18, CriticRank = 1 << 19, Committed = 1 << 20, Critique = 1 << 21,
        Spans = 1 << 22, LookAheadRewards = 1 << 23, Depth = 1 << 24, Children = 1 << 25,
    }

    public static byte[] Encode(PreferenceTree tree)
    {
        var w = Writer.Rent();
        Write(w, tree);
        return w.ToArrayAndReturn();
    }

    static void Write(Writer w, PreferenceTree tree)
    {
        w.NewStringTable();
        w.Byte(FormatVersion);
        w.String(tree.TreeId); w.String(tree.Campaign); w.String(tree.TaskId); w.String(tree.TaskInput);
        w.String(tree.Environment); w.String(tree.Algorithm); w.String(tree.Critic);
        w.Int(tree.Iteration);
        w.Int(tree.PolicyVersion);
        w.Long(tree.CreatedAtUtc.ToBinary());
        var stats = tree.Stats;
        w.Double(stats.WallMs); w.Double(stats.ProposerMs); w.Double(stats.EvaluatorMs); w.Double(stats.EnvironmentMs);
        w.Int(stats.ProposerCalls); w.Int(stats.EvaluatorCalls); w.Int(stats.GeneratedTokens);

        w.Count(tree.Nodes.Count);
        var childCounts = new int[tree.Nodes.Count];
        for (var c = 1; c < tree.Nodes.Count; c++)
            if (tree.Nodes[c].Parent is var p && p >= 0 && p < c) childCounts[p]++;
        for (var i = 0; i < tree.Nodes.Count; i++)
        {
            var n = tree.Nodes[i];
            var derivedDepth = n.Parent >= 0 && n.Parent < i ? tree.Nodes[n.Parent].Depth + 1 : 0;
            var mask = Mask(n, n.Depth != derivedDepth, !HasDerivedChildren(tree, i, childCounts[i]));
            w.Count((int)mask);
            w.Int(n.Parent);
            if (mask.HasFlag(Field.Action)) w.String(n.Action);
            if (mask.HasFlag(Field.StepText)) w.String(n.StepText);
            if (mask.HasFlag(Field.TokenIds)) { w.Count(n.TokenIds.Length); foreach (var t in n.TokenIds) w.Int(t); }
            if (mask.HasFlag(Field.LogProbs)) { w.Count(n.LogProbs.Length); w.Floats(n.LogProbs); }
            if (mask.HasFlag(Field.Prior)) w.Double(n.Prior);
            if (mask.HasFlag(Field.Visits)) w.Int(n.Visits);
            if (mask.HasFlag(Field.ValueSum)) w.Double(n.ValueSum);
            if (mask.HasFlag(Field.Q)) w.Double(n.Q);
            if (mask.HasFlag(Field.V)) w.Double(n.V);
            if (mask.HasFlag(Field.Value)) w.Double(n.Value);
            if (mask.HasFlag(Field.TerminalReward)) w.Double(n.TerminalReward!.Value);
            if (mask.HasFlag(Field.TerminalReason)) w.String(n.TerminalReason!);
            if (mask.HasFlag(Field.CriticScores))
            {
                w.Count(n.CriticScores.Count);
                foreach (var (name, score) in n.CriticScores) { w.String(name); w.Double(score); }
            }
            if (mask.HasFlag(Field.PolicyVersion)) w.Int(n.PolicyVersion);
            if (mask.HasFlag(Field.Critic)) w.String(n.Critic);
            if (mask.HasFlag(Field.CreatedAtMs)) w.Double(n.CreatedAtMs);
            if (mask.HasFlag(Field.WallMs)) w.Double(n.WallMs);
            if (mask.HasFlag(Field.GeneratedTokens)) w.Int(n.GeneratedTokens);
            if (mask.HasFlag(Field.CriticRank)) w.Int(n.CriticRank);
            if (mask.HasFlag(Field.Critique)) w.String(n.Critique!);
            if (mask.HasFlag(Field.Spans)) { w.Count(n.Spans.Count); foreach (var s in n.Spans) { w.Int(s.Characters); w.Int(s.Tokens); } }
            if (mask.HasFlag(Field.LookAheadRewards)) { w.Count(n.LookAheadRewards.Length); foreach (var r in n.LookAheadRewards) w.Double(r); }
            if (mask.HasFlag(Field.Depth)) w.Int(n.Depth);
            if (mask.HasFlag(Field.Children)) { w.Count(n.Children.Count); foreach (var c in n.Children) w.Int(c); }
        }
    }

    static Field Mask(TreeNode n, bool explicitDepth, bool explicitChildren)
    {
        Field m = 0;
        void Set(bool present, Field f) { if (present) m |= f; }
        Set(n.Action.Length > 0, Field.Action);
        Set(n.StepText.Length > 0, Field.StepText);
        Set(n.TokenIds.Length > 0, Field.TokenIds);
        Set(n.LogProbs.Length > 0, Field.LogProbs);
        Set(!IsZero(n.Prior), Field.Prior);
        Set(n.Visits != 0, Field.Visits);
        Set(!IsZero(n.ValueSum), Field.ValueSum);
        Set(!IsZero(n.Q), Field.Q);
        Set(!IsZero(n.V), Field.V);
        Set(!IsZero(n.Value), Field.Value);
        Set(n.IsTerminal, Field.IsTerminal);
        Set(n.TerminalReward.HasValue, Field.TerminalReward);
        Set(n.TerminalReason is not null, Field.TerminalReason);
        Set(n.CriticScores.Count > 0, Field.CriticScores);
        Set(n.PolicyVersion != 0, Field.PolicyVersion);
        Set(n.Critic.Length > 0, Field.Critic);
        Set(!IsZero(n.CreatedAtMs), Field.CreatedAtMs);
        Set(!IsZero(n.WallMs), Field.WallMs);
        Set(n.GeneratedTokens != 0, Field.GeneratedTokens);
        Set(n.CriticRank != 0, Field.CriticRank);
        Set(n.Committed, Field.Committed);
        Set(n.Critique is not null, Field.Critique);
        Set(n.Spans.Count > 0, Field.Spans);
        Set(n.LookAheadRewards.Length > 0, Field.LookAheadRewards);
        Set(explicitDepth, Field.Depth);
        Set(explicitChildren, Field.Children);
        return m;
    }

    /// <summary>Bit-exact zero (so -0.0 and NaN are written, and read back as they were).</summary>
    static bool IsZero(double d) => BitConverter.DoubleToInt64Bits(d) == 0;

    /// <summary>Whether the node's children are what the decoder rebuilds without them: the later nodes naming it as
    /// parent, in index order (then they are strictly increasing, each names it, and there are as many).</summary>
    static bool HasDerivedChildren(PreferenceTree tree, int index, int derivedCount)
    {
        var children = tree.Nodes[index].Children;
        if (children.Count != derivedCount) return false;
        var previous = index;
        foreach (var c in children)
        {
            if (c <= previous || c >= tree.Nodes.Count || tree.Nodes[c].Parent != index) return false;
            previous = c;
        }
        return true;
    }

    const Field KnownFields = (Field)((1u << 26) - 1);

    /// <summary>Several trees, each prefixed by its length (a bucket's event or snapshot).</summary>
    public static byte[] EncodeMany(IReadOnlyList<PreferenceTree> trees)
    {
        // One buffer for all trees (each tree's length is written once it is known): one allocation per event.
        var w = Writer.Rent();
        w.Int32(trees.Count);
        foreach (var tree in trees)
        {
            var at = w.Reserve(4);
            Write(w, tree);
            w.Int32At(at, w.Length - at - 4);
        }
        return w.ToArrayAndReturn();
    }

    public static IReadOnlyList<PreferenceTree> DecodeMany(byte[] bytes, string manifest)
    {
        var trees = new List<PreferenceTree>();
        var at = 4;
        var count = bytes.Length >= 4 ? BinaryPrimitives.ReadInt32LittleEndian(bytes) : -1;
        for (var i = 0; i < count && at + 4 <= bytes.Length; i++)
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at));
            if (length < 0 || length > bytes.Length - at - 4) break;
            trees.Add(Decode(bytes[(at + 4)..(at + 4 + length)], manifest));
            at += 4 + length;
        }
        if (trees.Count != count || at != bytes.Length)
            throw new SerializationException($"corrupt '{manifest}' payload ({bytes.Length} bytes): {trees.Count} of {count} trees readable");
        return trees;
    }

    public static PreferenceTree Decode(byte[] bytes, string manifest)
    {
        try
        {
            return DecodeUnchecked(new Reader(bytes));
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or OverflowException or DecoderFallbackException)
        {
            throw new SerializationException($"corrupt '{manifest}' payload ({bytes.Length} bytes): {e.Message}", e);
        }
    }

    static PreferenceTree DecodeUnchecked(Reader r)
    {
        var version = r.Byte();
        if (version != FormatVersion) throw new InvalidDataException($"format version {version}, expected {FormatVersion}");
        var tree = new PreferenceTree
        {
            TreeId = r.String(), Campaign = r.String(), TaskId = r.String(), TaskInput = r.String(), Environment = r.String(),
            Algorithm = r.String(), Critic = r.String(), Iteration = r.Int(), PolicyVersion = r.Int(),
            CreatedAtUtc = DateTime.FromBinary(r.Long()),
            Stats = new SearchStats { WallMs = r.Double(), ProposerMs = r.Double(), EvaluatorMs = r.Double(), EnvironmentMs = r.Double() },
        };
        (tree.Stats.ProposerCalls, tree.Stats.EvaluatorCalls, tree.Stats.GeneratedTokens) = (r.Int(), r.Int(), r.Int());

        var count = r.Count(minBytesEach: 2);
        var explicitChildren = new bool[count];
        tree.Nodes = new List<TreeNode>(count);
        for (var i = 0; i < count; i++)
        {
            var mask = (Field)(uint)r.Count(minBytesEach: 0);
            if ((mask & ~KnownFields) != 0) throw new InvalidDataException($"node {i} has unknown fields 0x{(uint)(mask & ~KnownFields):x}");
            var n = new TreeNode { Index = i, Parent = r.Int() };
            if (i == 0 ? n.Parent != -1 : n.Parent < 0 || n.Parent >= i)
                throw new InvalidDataException($"node {i} has parent {n.Parent}");
            if (mask.HasFlag(Field.Action)) n.Action = r.String();
            if (mask.HasFlag(Field.StepText)) n.StepText = r.String();
            if (mask.HasFlag(Field.TokenIds)) { n.TokenIds = new int[r.Count(1)]; for (var k = 0; k < n.TokenIds.Length; k++) n.TokenIds[k] = r.Int(); }
            if (mask.HasFlag(Field.LogProbs)) { n.LogProbs = new float[r.Count(4)]; r.Floats(n.LogProbs); }
            if (mask.HasFlag(Field.Prior)) n.Prior = r.Double();
            if (mask.HasFlag(Field.Visits)) n.Visits = r.Int();
            if (mask.HasFlag(Field.ValueSum)) n.ValueSum = r.Double();
            if (mask.HasFlag(Field.Q)) n.Q = r.Double();
            if (mask.HasFlag(Field.V)) n.V = r.Double();
            if (mask.HasFlag(Field.Value)) n.Value = r.Double();
            n.IsTerminal = mask.HasFlag(Field.IsTerminal);
            if (mask.HasFlag(Field.TerminalReward)) n.TerminalReward = r.Double();
            if (mask.HasFlag(Field.TerminalReason)) n.TerminalReason = r.String();
            if (mask.HasFlag(Field.CriticScores))
            {
                var scores = r.Count(9);
                for (var k = 0; k < scores; k++) n.CriticScores[r.String()] = r.Double();
            }
            if (mask.HasFlag(Field.PolicyVersion)) n.PolicyVersion = r.Int();
            if (mask.HasFlag(Field.Critic)) n.Critic = r.String();
            if (mask.HasFlag(Field.CreatedAtMs)) n.CreatedAtMs = r.Double();
            if (mask.HasFlag(Field.WallMs)) n.WallMs = r.Double();
            if (mask.HasFlag(Field.GeneratedTokens)) n.GeneratedTokens = r.Int();
            if (mask.HasFlag(Field.CriticRank)) n.CriticRank = r.Int();
            n.Committed = mask.HasFlag(Field.Committed);
            if (mask.HasFlag(Field.Critique)) n.Critique = r.String();
            if (mask.HasFlag(Field.Spans)) { var s = r.Count(2); for (var k = 0; k < s; k++) n.Spans.Add(new StepSpan(r.Int(), r.Int())); }
            if (mask.HasFlag(Field.LookAheadRewards)) { n.LookAheadRewards = new double[r.Count(8)]; for (var k = 0; k < n.LookAheadRewards.Length; k++) n.LookAheadRewards[k] = r.Double(); }
            n.Depth = mask.HasFlag(Field.Depth) ? r.Int() : i == 0 ? 0 : tree.Nodes[n.Parent].Depth + 1;
            if (mask.HasFlag(Field.Children)) { explicitChildren[i] = true; var c = r.Count(1); for (var k = 0; k < c; k++) n.Children.Add(r.Int()); }
            tree.Nodes.Add(n);
        }
        if (!r.AtEnd) throw new InvalidDataException($"{r.Left} bytes after the last node");
        for (var i = 1; i < count; i++)
            if (!explicitChildren[tree.Nodes[i].Parent]) tree.Nodes[tree.Nodes[i].Parent].Children.Add(i);
        return tree;
    }

    /// <summary>Appends to one growable array (no stream, no per-byte call).</summary>
    sealed class Writer
    {
        readonly Dictionary<string, int> _strings = new(StringComparer.Ordinal);
        byte[] _buffer = new byte[4096];
        int _length;

        /// <summary>One writer per thread, reused: a tree's encoding allocates only its result.</summary>
        [ThreadStatic] static Writer? _cached;

        public static Writer Rent()
        {
            var w = _cached ?? new Writer();
            _cached = null; // an encoding inside an encoding (never today) gets a writer of its own
            w._length = 0;
            return w;
        }

        public byte[] ToArrayAndReturn()
        {
            var bytes = _buffer.AsSpan(0, _length).ToArray();
            // A writer grown by a huge tree is not kept (it would pin its buffer for the thread's life).
            if (_buffer.Length <= 1 << 20) _cached = this;
            return bytes;
        }

        public int Length => _length;

        /// <summary>Strings are indexed per tree (a tree decodes on its own).</summary>
        public void NewStringTable() => _strings.Clear();

        public int Reserve(int n)
        {
            Take(n);
            return _length - n;
        }

        public void Int32(int value) => BinaryPrimitives.WriteInt32LittleEndian(Take(4), value);
        public void Int32At(int at, int value) => BinaryPrimitives.WriteInt32LittleEndian(_buffer.AsSpan(at, 4), value);

        Span<byte> Take(int n)
        {
            if (_length + n > _buffer.Length) Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + n));
            var span = _buffer.AsSpan(_length, n);
            _length += n;
            return span;
        }

        public void Byte(byte b) => Take(1)[0] = b;
        public void Count(int value) => Unsigned((uint)value);
        public void Int(int value) => Unsigned((uint)((value << 1) ^ (value >> 31)));
        public void Long(long value) => BinaryPrimitives.WriteInt64LittleEndian(Take(8), value);
        public void Double(double value) => BinaryPrimitives.WriteDoubleLittleEndian(Take(8), value);
        /// <summary>Packed little-endian float32s.</summary>
        public void Floats(float[] values)
        {
            var into = Take(values.Length * 4);
            if (BitConverter.IsLittleEndian) System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).CopyTo(into);
            else for (var k = 0; k < values.Length; k++) BinaryPrimitives.WriteSingleLittleEndian(into[(4 * k)..], values[k]);
        }

        void Unsigned(uint value)
        {
            if (_length + 5 > _buffer.Length) Array.Resize(ref _buffer, _buffer.Length * 2);
            while (value >= 0x80) { _buffer[_length++] = (byte)(value | 0x80); value >>= 7; }
            _buffer[_length++] = (byte)value;
        }

        /// <summary>0 then the UTF-8 bytes for a string not seen before in this tree; else 1 + its index in the table.</summary>
        public void String(string s)
        {
            if (_strings.TryGetValue(s, out var index)) { Count(index + 1); return; }
            _strings[s] = _strings.Count;
            Count(0);
            var length = Encoding.UTF8.GetByteCount(s);
            Count(length);
            Encoding.UTF8.GetBytes(s, Take(length));
        }
    }

    sealed class Reader(byte[] bytes)
    {
        static readonly UTF8Encoding Strict = new(false, throwOnInvalidBytes: true);
        readonly List<string> _strings = [];
        int _at;

        public bool AtEnd => _at == bytes.Length;
        public int Left => bytes.Length - _at;

        void Need(int n)
        {
            if (n < 0 || n > Left) throw new InvalidDataException($"truncated at byte {_at} (needs {n}, {Left} left)");
        }

        public byte Byte() { Need(1); return bytes[_at++]; }

        ulong Unsigned()
        {
            ulong value = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = Byte();
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return value;
            }
            throw new InvalidDataException($"varint longer than 10 bytes at byte {_at}");
        }

        uint Unsigned32() => Unsigned() is var v && v <= uint.MaxValue ? (uint)v : throw new InvalidDataException($"varint {v} out of range at byte {_at}");

        /// <summary>A count of items that take at least <paramref name="minBytesEach"/> bytes each: never more than the bytes left allow.</summary>
        public int Count(int minBytesEach)
        {
            var v = Unsigned32();
            if (minBytesEach > 0 && v > (uint)(Left / minBytesEach)) throw new InvalidDataException($"count {v} at byte {_at} exceeds the {Left} bytes left");
            return (int)v;
        }

        public int Int() { var v = Unsigned32(); return (int)(v >> 1) ^ -(int)(v & 1); }
        public long Long() { Need(8); var v = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(_at)); _at += 8; return v; }
        public double Double() { Need(8); var v = BinaryPrimitives.ReadDoubleLittleEndian(bytes.AsSpan(_at)); _at += 8; return v; }
        /// <summary>Packed little-endian float32s (one copy on a little-endian machine).</summary>
        public void Floats(float[] into)
        {
            Need(into.Length * 4);
            var from = bytes.AsSpan(_at, into.Length * 4);
            if (BitConverter.IsLittleEndian) from.CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(into.AsSpan()));
            else for (var k = 0; k < into.Length; k++) into[k] = BinaryPrimitives.ReadSingleLittleEndian(from[(4 * k)..]);
            _at += into.Length * 4;
        }

        public string String()
        {
            var reference = Unsigned32();
            if (reference > 0)
                return reference <= _strings.Count ? _strings[(int)reference - 1] : throw new InvalidDataException($"string #{reference} not defined at byte {_at}");
            var length = Count(1);
            Need(length);
            var s = Strict.GetString(bytes, _at, length);
            _at += length;
            _strings.Add(s);
            return s;
        }
    }
}

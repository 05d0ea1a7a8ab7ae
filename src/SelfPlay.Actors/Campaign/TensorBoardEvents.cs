using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace SelfPlay.Actors.Campaign;

/// <summary>A scalar as TensorBoard stores it: a tag, a step, a value and the wall time it was written at.</summary>
public sealed record TensorBoardScalar(string Tag, long Step, float Value, double WallTime);

/// <summary>
/// TensorBoard event files (RUN_DIR/tensorboard/events.out.tfevents.TIME.HOST), written without TensorFlow: TFRecord
/// framing (uint64 length, masked CRC-32C of it, an Event protobuf, its masked CRC-32C) around Event messages
/// (wall_time = 1, step = 2, file_version = 3, summary = 5 with Summary.Value: tag = 1, simple_value = 2). Append-only:
/// a resumed campaign opens a new file and logs the iterations evaluated from then on.
/// </summary>
public sealed class TensorBoardEvents
{
    readonly string _file;

    public TensorBoardEvents(string runDir)
    {
        var dir = Path.Combine(runDir, "tensorboard");
        Directory.CreateDirectory(dir);
        var now = DateTimeOffset.UtcNow;
        _file = Path.Combine(dir, $"events.out.tfevents.{now.ToUnixTimeSeconds()}.{Environment.MachineName}.{Environment.ProcessId}");
        Append(Event(WallTime(now), 0, fileVersion: "brain.Event:2", null));
    }

    public string FilePath => _file;

    /// <summary>Appends the scalars (one Event each) and flushes, so TensorBoard sees them while the campaign runs.</summary>
    public void Write(IEnumerable<(string Tag, long Step, double Value)> scalars)
    {
        var wall = WallTime(DateTimeOffset.UtcNow);
        using var stream = new FileStream(_file, FileMode.Append, FileAccess.Write);
        foreach (var (tag, step, value) in scalars)
            if (double.IsFinite(value)) WriteRecord(stream, Event(wall, step, null, (tag, (float)value)));
    }

    /// <summary>The scalars of an event file, every record's length and data checked against their CRCs.</summary>
    public static List<TensorBoardScalar> Read(string file)
    {
        var bytes = File.ReadAllBytes(file);
        var scalars = new List<TensorBoardScalar>();
        for (var at = 0; at < bytes.Length;)
        {
            if (at + 12 > bytes.Length) throw new InvalidDataException($"{file}: a record header is cut off at byte {at}");
            var length = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at));
            if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8)) != MaskedCrc(bytes.AsSpan(at, 8)))
                throw new InvalidDataException($"{file}: the length CRC of the record at byte {at} is wrong");
            if (at + 12 + length + 4 > bytes.Length) throw new InvalidDataException($"{file}: the record at byte {at} is cut off");
            var data = bytes.AsSpan(at + 12, length);
            if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 12 + length)) != MaskedCrc(data))
                throw new InvalidDataException($"{file}: the data CRC of the record at byte {at} is wrong");
            scalars.AddRange(ParseEvent(data));
            at += 12 + length + 4;
        }
        return scalars;
    }

    void Append(byte[] record)
    {
        using var stream = new FileStream(_file, FileMode.Append, FileAccess.Write);
        WriteRecord(stream, record);
    }

    static double WallTime(DateTimeOffset t) => t.ToUnixTimeMilliseconds() / 1000.0;

    static void WriteRecord(Stream stream, byte[] data)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], MaskedCrc(header[..8]));
        stream.Write(header);
        stream.Write(data);
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, MaskedCrc(data));
        stream.Write(footer);
    }

    /// <summary>CRC-32C (Castagnoli), masked as TFRecord does: rotated right by 15 bits plus 0xa282ead8.</summary>
    static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data) crc = BitOperations.Crc32C(crc, b);
        crc = ~crc;
        return unchecked(((crc >> 15) | (crc << 17)) + 0xa282ead8u);
    }

    static byte[] Event(double wallTime, long step, string? fileVersion, (string Tag, float Value)? scalar)
    {
        using var message = new MemoryStream();
        message.WriteByte((1 << 3) | 1); // wall_time: double
        Span<byte> d = stackalloc byte[8];
        BinaryPrimitives.WriteDoubleLittleEndian(d, wallTime);
        message.Write(d);
        if (step != 0)
        {
            message.WriteByte(2 << 3); // step: int64 varint
            Varint(message, (ulong)step);
        }
        if (fileVersion is not null) Bytes(message, 3, Encoding.UTF8.GetBytes(fileVersion));
        if (scalar is { } s)
        {
            using var value = new MemoryStream();
            Bytes(value, 1, Encoding.UTF8.GetBytes(s.Tag));
            value.WriteByte((2 << 3) | 5); // simple_value: float
            Span<byte> f = stackalloc byte[4];
            BinaryPrimitives.WriteSingleLittleEndian(f, s.Value);
            value.Write(f);
            using var summary = new MemoryStream();
            Bytes(summary, 1, value.ToArray());
            Bytes(message, 5, summary.ToArray());
        }
        return message.ToArray();
    }

    static void Bytes(Stream stream, int field, byte[] bytes)
    {
        stream.WriteByte((byte)((field << 3) | 2));
        Varint(stream, (ulong)bytes.Length);
        stream.Write(bytes);
    }

    static void Varint(Stream stream, ulong value)
    {
        while (value >= 0x80)
        {
            stream.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        stream.WriteByte((byte)value);
    }

    /// <summary>The scalars of one Event message (none for the file-version event).</summary>
    static IEnumerable<TensorBoardScalar> ParseEvent(ReadOnlySpan<byte> data)
    {
        var (wall, step) = (0.0, 0L);
        var values = new List<(string, float)>();
        foreach (var (field, wire, payload, number) in Fields(data))
        {
            if (field == 1 && wire == 1) wall = BitConverter.Int64BitsToDouble((long)number);
            else if (field == 2 && wire == 0) step = (long)number;
            else if (field == 5 && wire == 2)
                foreach (var (vf, vw, value, _) in Fields(payload))
                {
                    if (vf != 1 || vw != 2) continue;
                    var (tag, simple) = ("", float.NaN);
                    foreach (var (f, w, p, n) in Fields(value))
                    {
                        if (f == 1 && w == 2) tag = Encoding.UTF8.GetString(p);
                        else if (f == 2 && w == 5) simple = BitConverter.Int32BitsToSingle((int)n);
                    }
                    values.Add((tag, simple));
                }
        }
        return values.Select(v => new TensorBoardScalar(v.Item1, step, v.Item2, wall)).ToList();
    }

    /// <summary>The protobuf fields of a message: number, wire type, and the bytes (length-delimited) or the number.</summary>
    static List<(int Field, int Wire, byte[] Payload, ulong Number)> Fields(ReadOnlySpan<byte> data)
    {
        var fields = new List<(int, int, byte[], ulong)>();
        var at = 0;
        ulong ReadVarint(ReadOnlySpan<byte> d)
        {
            ulong result = 0;
            for (var shift = 0; ; shift += 7)
            {
                if (at >= d.Length || shift > 63) throw new InvalidDataException("a protobuf varint is cut off");
                var b = d[at++];
                result |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return result;
            }
        }
        while (at < data.Length)
        {
            var key = ReadVarint(data);
            var (field, wire) = ((int)(key >> 3), (int)(key & 7));
            switch (wire)
            {
                case 0: fields.Add((field, wire, [], ReadVarint(data))); break;
                case 1: fields.Add((field, wire, [], BinaryPrimitives.ReadUInt64LittleEndian(data[at..]))); at += 8; break;
                case 5: fields.Add((field, wire, [], BinaryPrimitives.ReadUInt32LittleEndian(data[at..]))); at += 4; break;
                case 2:
                    var length = (int)ReadVarint(data);
                    fields.Add((field, wire, data.Slice(at, length).ToArray(), 0));
                    at += length;
                    break;
                default: throw new InvalidDataException($"protobuf wire type {wire} is not used by event files");
            }
        }
        return fields;
    }
}

/// <summary>The scalars of a summary.json row for TensorBoard: per iteration (step = iteration) and per optimizer step.</summary>
public static class SummaryScalars
{
    /// <param name="stepOffset">optimizer steps of the iterations before this one: train_step/* use one running step count</param>
    public static IEnumerable<(string Tag, long Step, double Value)> Of(IterationSummary row, long stepOffset)
    {
        long i = row.Iteration;
        if (row.HeldOut is { } held)
        {
            yield return ("heldout/rate", i, held.Rate);
            yield return ("heldout/solved", i, held.Solved);
        }
        yield return ("search/trees", i, row.Trees);
        yield return ("search/solved_trees", i, row.SolvedTrees);
        yield return ("search/nodes", i, row.Nodes);
        yield return ("search/failed_tasks", i, row.FailedTasks);
        yield return ("pairs", i, row.Pairs);
        yield return ("time/search_seconds", i, row.SearchSeconds);
        yield return ("time/train_seconds", i, row.TrainSeconds);
        yield return ("time/eval_seconds", i, row.EvalSeconds);
        if (row.TrainLossFirst is { } first) yield return ("train/loss_first", i, first);
        if (row.TrainLossLast is { } last) yield return ("train/loss_last", i, last);
        if (row.RewardAccuracy is { } accuracy) yield return ("train/reward_accuracy", i, accuracy);
        if (row.Learner is { } learner)
        {
            yield return ("train/ranking_accuracy", i, learner.RankingAccuracy);
            foreach (var s in learner.Steps)
            {
                var step = stepOffset + s.Step;
                yield return ("train_step/loss", step, s.Loss);
                yield return ("train_step/learning_rate", step, s.LearningRate);
                yield return ("train_step/reward_accuracy", step, s.RewardAccuracy);
                yield return ("train_step/reward_margin", step, s.RewardMargin);
                yield return ("train_step/chosen_logprob", step, s.ChosenLogProb);
                yield return ("train_step/rejected_logprob", step, s.RejectedLogProb);
            }
        }
        if (row.Throughput is { } t)
        {
            yield return ("throughput/trees_per_second", i, t.TreesPerSecond);
            yield return ("throughput/nodes_per_second", i, t.NodesPerSecond);
            yield return ("throughput/inference_tokens_per_second", i, t.InferenceTokensPerSecond);
            yield return ("throughput/batch_fill", i, t.BatchFill);
        }
        if (row.LogProbParity is { } parity) yield return ("inference/logprob_parity_mean_abs", i, parity.MeanAbsDifference);
    }
}

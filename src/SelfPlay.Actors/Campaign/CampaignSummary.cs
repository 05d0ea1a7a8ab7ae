using System.Text.Json;
using System.Text.Json.Serialization;

namespace SelfPlay.Actors.Campaign;

public sealed record HeldOutResult(int Solved, int Total, double Rate);

/// <summary>One row of summary.json: the warm-up (iteration 0, phase "sft") or one self-play iteration.</summary>
public sealed record IterationSummary(
    int Iteration, string Phase, int PolicyVersion, int Trees, int Pairs, HeldOutResult? HeldOut, double WallSeconds,
    double SearchSeconds, double TrainSeconds, double EvalSeconds, int Nodes, int SolvedTrees, int FailedTasks,
    double? TrainLossFirst, double? TrainLossLast, double? RewardAccuracy, SelfPlay.Models.Training.LearnerDiagnostics? Learner = null,
    RoleThroughput? Throughput = null, SelfPlay.Actors.Protocol.CriticReport? Critic = null,
    SelfPlay.Core.Preferences.PairReport? PairDiagnostics = null, SelfPlay.Models.Training.LogProbParity? LogProbParity = null);

/// <summary>Per-role throughput of one iteration's search phase: the search workers (trees, nodes per second of search
/// wall time) and the inference actors (generated tokens per second, and how full their batches were).</summary>
public sealed record RoleThroughput(double TreesPerSecond, double NodesPerSecond, double InferenceTokensPerSecond, double BatchFill,
    long InferenceBatches, double InferenceBusySeconds);

/// <summary>RUN_DIR/summary.json, in the schema of DESIGN.md (plus per-phase timings and training diagnostics).</summary>
/// <param name="ExcludedTasks">training tasks removed by environment.exclude-file</param>
public sealed record CampaignSummary(string Name, string Environment, string Status, IReadOnlyList<IterationSummary> Iterations,
    string? Error = null, double WallSeconds = 0, int ExcludedTasks = 0)
{
    public const string FileName = "summary.json";

    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public void Write(string runDir)
    {
        var path = Path.Combine(runDir, FileName);
        File.WriteAllText(path + ".tmp", JsonSerializer.Serialize(this, Json));
        File.Move(path + ".tmp", path, true);
    }

    public static CampaignSummary Read(string runDir) =>
        JsonSerializer.Deserialize<CampaignSummary>(File.ReadAllText(Path.Combine(runDir, FileName)), Json)
        ?? throw new InvalidDataException($"{Path.Combine(runDir, FileName)} is empty");
}

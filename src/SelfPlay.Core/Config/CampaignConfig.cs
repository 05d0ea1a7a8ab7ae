namespace SelfPlay.Core.Config;

/// <summary>A campaign's whole configuration (hocon/reference.conf documents every field).</summary>
public sealed record CampaignConfig(
    string Name,
    int Seed,
    EnvironmentConfig Environment,
    ModelConfig Model,
    WarmupConfig Warmup,
    SearchConfig Search,
    IterationsConfig Iterations,
    PreferenceConfig Preferences,
    LearnerConfig Learner,
    EvalConfig Eval,
    ActorsConfig Actors,
    PersistenceConfig Persistence);

public sealed record EnvironmentConfig(string Type, string StepMode, int HeldOut, int SplitSeed, int MaxSteps, double WrongAnswerReward = 0,
    string PluginFolder = "", double StepTimeoutSeconds = 10, int TrainTasks = 2000, IReadOnlyDictionary<string, string>? Settings = null);

public sealed record ModelConfig(int HiddenSize, int IntermediateSize, int Layers, int Heads, int KvHeads, double RopeTheta,
    int MaxPositions, string Device, int Threads, int MaxStepTokens);

public sealed record WarmupConfig(string FromCheckpoint, double Share, int TracesPerPuzzle, int Epochs, int BatchSize, double LearningRate);

public sealed record SearchConfig(string Algorithm, int Simulations, int Expansions, double CPuct, double LengthPenalty,
    double Temperature, string Backup);

public sealed record IterationsConfig(int Count, int Trees);

public sealed record PreferenceConfig(string PairRule, double MinQGap);

public sealed record LearnerConfig(string Loss, double Beta, double SftWeight, int Epochs, int BatchSize, double LearningRate, int Window, string Reference);

public sealed record EvalConfig(bool Greedy);

public sealed record ActorsConfig(int SearchWorkers, int InferenceBatchRows, int LeaseSeconds, int AskTimeoutSeconds);

public sealed record PersistenceConfig(string Provider, string ConnectionString);

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
    PersistenceConfig Persistence,
    CriticConfig Critic,
    ClusterSecurityConfig? Cluster = null,
    PolicyConfig? Policy = null,
    InferenceConfig? Inference = null)
{
    public PolicyConfig PolicySource => Policy ?? new PolicyConfig();

    public InferenceConfig InferenceBackend => Inference ?? new InferenceConfig();

    public ClusterSecurityConfig Security => Cluster ?? new ClusterSecurityConfig();
}

/// <summary>
/// How the nodes of a campaign find and trust each other (the cluster section): the actor-system name (by default
/// "selfplay-" + the campaign name, so two campaigns on one network never merge) and the campaign's TLS certificate
/// (every node holds the same one; a peer without it can neither join nor deliver a message).
/// </summary>
/// <summary>Where the policy comes from: a Hugging Face checkpoint folder, or ("") the character model of the model section.</summary>
/// <param name="ChatTemplate">auto | none | chatml | llama3 | mistral: how the environment's prompt is rendered for the policy</param>
/// <param name="EnvironmentTurn">with a chat template, where the text an environment writes after a step goes: "tool" (a turn
/// of its own between assistant turns) or "assistant" (inside the assistant turn)</param>
public sealed record PolicyConfig(string Checkpoint = "", string ChatTemplate = "auto", string EnvironmentTurn = "tool");

/// <summary>
/// Where search generation and held-out evaluation run: "local" (the inference actor's own model) or "openai" (any
/// OpenAI-compatible server: vLLM, SGLang, selfplay serve), which serves v0 as <paramref name="BaseModel"/> ("" = the
/// first model it lists without a parent) and every later version as a LoRA adapter loaded under "policy-vN".
/// </summary>
public sealed record InferenceConfig(string Backend = "local", string Endpoint = "", [ConfigKey("model")] string BaseModel = "", string ApiKeyEnv = "",
    int MaxConcurrency = 16, double TimeoutSeconds = 60, int MaxRetries = 3, [ConfigKey("logprob-tolerance")] double LogProbTolerance = 0.05)
{
    public bool Remote => Backend == "openai";

    public LlmConfig Client => new(Endpoint, BaseModel, ApiKeyEnv, TimeoutSeconds, MaxRetries);
}

public sealed record ClusterSecurityConfig(string SystemName = "", [ConfigKey("tls.certificate")] string TlsCertificate = "",
    [ConfigKey("tls.key")] string TlsKey = "", [ConfigKey("tls.password-env")] string TlsPasswordEnv = "");

public sealed record EnvironmentConfig(string Type, string StepMode, int HeldOut, int SplitSeed, int MaxSteps, double WrongAnswerReward = 0.2,
    string PluginFolder = "", double StepTimeoutSeconds = 10, int TrainTasks = 2000, IReadOnlyDictionary<string, string>? Settings = null,
    [ConfigKey("llm", FromRoot = true)] LlmConfig? Llm = null, string ExcludeFile = "");

/// <summary>An OpenAI-compatible chat completions endpoint for LLM judges and critics (the campaign's llm section).
/// The key only ever comes from the environment variable ApiKeyEnv names (never from a file a run folder keeps).</summary>
public sealed record LlmConfig(string Endpoint = "", string Model = "", string ApiKeyEnv = "",
    double TimeoutSeconds = 60, int MaxRetries = 3);

public sealed record ModelConfig(int HiddenSize, int IntermediateSize, int Layers, int Heads, int KvHeads, double RopeTheta,
    int MaxPositions, string Device, int Threads, int MaxStepTokens, [ConfigKey("dtype")] string DType = "float32", int PrefixCacheMb = 256);

public sealed record WarmupConfig(string FromCheckpoint, double Share, int TracesPerPuzzle, int Epochs, int BatchSize, double LearningRate);

public sealed record SearchConfig(string Algorithm, int Simulations, int Expansions, double CPuct, double LengthPenalty,
    double Temperature, string Backup, MctsConfig? Mcts = null, BestFirstConfig? BestFirst = null, BeamConfig? Beam = null,
    DfsdtConfig? Dfsdt = null, SparConfig? Spar = null, TreeRolloutConfig? TreeRollout = null, string Critic = "verifier");

public sealed record IterationsConfig(int Count, int Trees);

public sealed record PreferenceConfig(string Extractor, double MinQGap, string Rejected = "worst", int MaxPerTree = 0, double Margin = 0.375,
    double QThreshold = 0.1, double CriticWeight = 1.0, double QCenter = 0.5, int MinListSize = 2, bool AdvantageStd = false,
    [ConfigKey("treepo-weighting")] string TreePoWeighting = "average", string Critic = "", double VisitTemperature = 1.0);

public sealed record LearnerConfig(string Loss, double Beta, double SftWeight, int Epochs, int BatchSize, double LearningRate, int Window, string Reference,
    double LabelSmoothing = 0, double Alpha = 1.0, double Gamma = 1.0, string StepWeights = "dissimilar", double ClipLow = 0.2, double ClipHigh = 0.28,
    int GradientAccumulation = 1, double WeightDecay = 0, double MaxGradNorm = 1.0, double WarmupShare = 0.05, int CheckpointEvery = 0,
    string Import = "", string ImportFormat = "trl-preference", string ImportErrors = "skip", [ConfigKey("dtype")] string DType = "float32",
    [ConfigKey("lora.rank")] int LoraRank = 0, [ConfigKey("lora.alpha")] double LoraAlpha = 16, [ConfigKey("lora.dropout")] double LoraDropout = 0,
    [ConfigKey("lora.target-modules")] string LoraTargetModules = "q,k,v,o", bool SolutionBuffer = true, int SolutionsPerTask = 0,
    double DesirableWeight = 1.0, double UndesirableWeight = 1.0, double HeldOutShare = 0, int Patience = 1, double Dropout = 0);

public sealed record EvalConfig(bool Greedy);

public sealed record ActorsConfig(int SearchWorkers, int InferenceBatchRows, int LeaseSeconds, int AskTimeoutSeconds,
    int EnvironmentActors = 4, string EnvironmentPlacement = "local");

/// <param name="SnapshotNodes">a tree of at least this many nodes stored again is also saved as a snapshot (0 = never)</param>
/// <param name="PasswordEnv">the environment variable holding the database password, added to the connection string when
/// the journal connects (a password written in the connection string itself is refused: it would land in config.conf)</param>
public sealed record PersistenceConfig(string Provider, string ConnectionString, int SnapshotNodes = 1000, string PasswordEnv = "");

/// <summary>
/// Training of the critic that search.critic = value or prm names: after the policy, each iteration trains it on the
/// nodes of the trees in learner.window (held-out-share of the trees kept apart to measure it), starting from the last
/// critic (the first from the warm-up policy's weights and a new head).
/// </summary>
public sealed record CriticConfig(int Epochs = 2, int BatchSize = 32, double LearningRate = 3e-4, int MaxExamples = 20000, double HeldOutShare = 0.1);

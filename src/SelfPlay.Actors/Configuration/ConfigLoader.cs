using System.Globalization;
using Akka.Configuration;
using Akka.Configuration.Hocon;
using SelfPlay.Actors.Learning;
using SelfPlay.Core.Config;
using SelfPlay.Core.Llm;
using SelfPlay.Core.Search;

namespace SelfPlay.Actors.Configuration;

/// <summary>A configuration problem, reported to the user in one line.</summary>
public sealed class ConfigException(string message) : Exception(message);

/// <summary>
/// Builds the campaign configuration: reference.conf (embedded), then a campaign file, then --set overrides.
/// Keys that reference.conf does not define are rejected, so a typo is an error rather than a silent default.
/// </summary>
public static class ConfigLoader
{
    public static string ReferenceText()
    {
        using var stream = typeof(ConfigLoader).Assembly.GetManifestResourceStream("SelfPlay.reference.conf")
            ?? throw new InvalidOperationException("reference.conf is not embedded");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    public static Config Reference() => ConfigurationFactory.ParseString(ReferenceText());

    /// <summary>The merged HOCON (campaign file over reference, --set over both). Secrets are never settings: a literal
    /// API key or database password is refused (it would be written to config.conf and shown by `ps`).</summary>
    public static Config Build(string? configFile, IEnumerable<string> sets)
    {
        var merged = BuildUnchecked(configFile, sets);
        RefuseSecrets(merged);
        return merged;
    }

    static void RefuseSecrets(Config c)
    {
        foreach (var section in new[] { "llm", "inference" })
            if (c.HasPath($"selfplay.{section}.api-key") && c.GetString($"selfplay.{section}.api-key") is { Length: > 0 })
                throw new ConfigException($"selfplay.{section}.api-key: a literal key is refused (it would be stored in the run folder); put it in an environment variable and name that in {section}.api-key-env");
        var connection = c.GetString("selfplay.persistence.connection-string") ?? "";
        if (connection.Length == 0) return;
        System.Data.Common.DbConnectionStringBuilder parsed;
        try { parsed = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connection }; }
        catch (ArgumentException e) { throw new ConfigException($"selfplay.persistence.connection-string is not a connection string: {FirstLine(e.Message)}"); }
        foreach (var key in new[] { "password", "pwd" })
            if (parsed.TryGetValue(key, out var value) && value?.ToString() is { Length: > 0 })
                throw new ConfigException("selfplay.persistence.connection-string: a password in it is refused (it would be stored in the run folder); put it in an environment variable and name that in persistence.password-env");
    }

    static Config BuildUnchecked(string? configFile, IEnumerable<string> sets)
    {
        var reference = Reference();
        var merged = reference;
        if (configFile is not null)
        {
            if (!File.Exists(configFile)) throw new ConfigException($"config file not found: {configFile}");
            Config file;
            try { file = ConfigurationFactory.ParseString(File.ReadAllText(configFile)); }
            catch (Exception e) { throw new ConfigException($"{configFile}: not valid HOCON: {FirstLine(e.Message)}"); }
            // Akka's configuration is built by SelfPlay (serializers, remoting, TLS): an akka block would be ignored.
            foreach (var root in file.Root.GetObject().Items.Keys.Where(k => k != "selfplay"))
                throw new ConfigException($"{configFile}: '{root}' is not read: only selfplay.* settings are (remoting and TLS: selfplay.cluster.*, see hocon/reference.conf)");
            foreach (var key in LeafPaths(file, "selfplay"))
                if (!reference.HasPath(key) && !IsEnvironmentSetting(key)) throw new ConfigException($"{configFile}: unknown setting {key}");
            merged = file.WithFallback(merged);
        }
        foreach (var set in sets)
        {
            var eq = set.IndexOf('=');
            if (eq <= 0) throw new ConfigException($"--set expects key=value, got '{set}'");
            var key = set[..eq].Trim();
            var value = set[(eq + 1)..].Trim();
            if (!key.StartsWith("selfplay.", StringComparison.Ordinal)) key = "selfplay." + key;
            if ((!reference.HasPath(key) || reference.GetValue(key).IsObject()) && !IsEnvironmentSetting(key))
                throw new ConfigException($"--set: unknown setting {key}");
            merged = Setting(key, value).WithFallback(merged);
        }
        return merged;
    }

    /// <summary>One setting as a config, built as HOCON values (the value is a literal, never parsed as HOCON text).</summary>
    static Config Setting(string path, string value)
    {
        var node = new HoconValue();
        node.AppendValue(new HoconLiteral { Value = value });
        foreach (var key in path.Split('.').Reverse())
        {
            var parent = new HoconObject();
            parent.Items[key] = node;
            node = new HoconValue();
            node.AppendValue(parent);
        }
        return new Config(new HoconRoot(node));
    }

    /// <summary>The resolved settings as HOCON, one "selfplay.path = value" line each, readable back by <see cref="Build"/>.</summary>
    public static string Render(Config config) =>
        string.Join("\n", LeafPaths(config, "selfplay").Order(StringComparer.Ordinal)
            .Select(path => $"{path} = {Quote(config.GetString(path) ?? "")}")) + "\n";

    static string Quote(string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _) || value is "true" or "false"
            ? value
            : "\"" + value.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";

    public static IEnumerable<string> LeafPaths(Config config, string root)
    {
        if (!config.HasPath(root)) yield break;
        var stack = new Stack<(string Path, HoconValue Value)>();
        stack.Push((root, config.GetValue(root)));
        while (stack.Count > 0)
        {
            var (path, value) = stack.Pop();
            if (value.IsObject())
                foreach (var (k, v) in value.GetObject().Items) stack.Push((path + "." + k, v));
            else yield return path;
        }
    }

    /// <summary>selfplay.environment.settings.* is free-form: the environment provider checks its own keys.</summary>
    const string EnvironmentSettings = "selfplay.environment.settings";

    static bool IsEnvironmentSetting(string key) => key.StartsWith(EnvironmentSettings + ".", StringComparison.Ordinal);

    static Dictionary<string, string> ReadEnvironmentSettings(Config c) =>
        LeafPaths(c, EnvironmentSettings).ToDictionary(path => path[(EnvironmentSettings.Length + 1)..], path => c.GetString(path) ?? "");

    static string FirstLine(string s) => s.Split('\n')[0].Trim();

    /// <param name="keysRead">receives every key read (without "selfplay."): a test checks that these are exactly reference.conf's</param>
    public static CampaignConfig Parse(Config c, ISet<string>? keysRead = null)
    {
        T Read<T>(string key, Func<string, T> read)
        {
            keysRead?.Add(key);
            // reference.conf is always the fallback, so a key missing here is a key it does not document.
            if (!c.HasPath("selfplay." + key)) throw new ConfigException($"selfplay.{key} is read but not in reference.conf");
            return Get(key, () => read("selfplay." + key));
        }
        string S(string key) => Read(key, k => c.GetString(k));
        int I(string key) => Read(key, k => c.GetInt(k));
        double D(string key) => Read(key, k => c.GetDouble(k));
        bool B(string key) => Read(key, k => c.GetBoolean(k));
        // model.dtype and learner.dtype follow policy.dtype unless set: bfloat16 on CUDA, float32 on the CPU for "auto".
        string DType(string key)
        {
            var value = S(key);
            if (value.Length > 0) return value;
            var policy = S("policy.dtype");
            if (policy is not ("auto" or "float32" or "bfloat16"))
                throw new ConfigException($"selfplay.policy.dtype must be auto, float32 or bfloat16, got '{policy}'");
            if (policy != "auto") return policy;
            return S("model.device").StartsWith("cuda", StringComparison.Ordinal) ? "bfloat16" : "float32";
        }

        var bound = ConfigBinder.Bind<CampaignConfig>((key, type) =>
            type == typeof(string) ? S(key) : type == typeof(int) ? I(key) : type == typeof(double) ? D(key) : type == typeof(bool) ? B(key)
            : type == typeof(IReadOnlyDictionary<string, string>) ? ReadEnvironmentSettings(c)
            : throw new InvalidOperationException($"selfplay.{key}: no reader for {type.Name}"));
        // The settings whose value depends on others: the dtypes ("" follows policy.dtype), SPaR's refiner feedback (auto).
        var spar = bound.Search.Spar!;
        var config = bound with
        {
            Model = bound.Model with { DType = DType("model.dtype") },
            Learner = bound.Learner with { DType = DType("learner.dtype") },
            // auto: a pretrained policy reads the critique, the character model trained from scratch cannot.
            Search = bound.Search with { Spar = spar with { RefinerFeedback = spar.RefinerFeedback is "auto"
                ? bound.PolicySource.Checkpoint.Length == 0 ? "none" : "critique" : spar.RefinerFeedback } },
        };
        Validate(config);
        return config;
    }

    static T Get<T>(string key, Func<T> read)
    {
        try { return read(); }
        catch (Exception e) when (e is not ConfigException)
        {
            throw new ConfigException($"selfplay.{key}: expected {typeof(T).Name.ToLowerInvariant()}: {FirstLine(e.Message)}");
        }
    }

    static void Validate(CampaignConfig c)
    {
        void Check(bool ok, string message) { if (!ok) throw new ConfigException(message); }
        Check(!string.IsNullOrWhiteSpace(c.Name) && c.Name.All(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' or '.'),
            $"selfplay.name must be letters, digits, '-', '_' or '.', got '{c.Name}'");
        Check(c.Environment.StepMode is "operation" or "whole-step", $"selfplay.environment.step-mode must be operation or whole-step, got '{c.Environment.StepMode}'");
        Check(c.Environment.HeldOut > 0, $"selfplay.environment.held-out must be positive, got {c.Environment.HeldOut}");
        Check(c.Environment.StepTimeoutSeconds >= 0, $"selfplay.environment.step-timeout-seconds must be non-negative, got {c.Environment.StepTimeoutSeconds}");
        Check(c.Environment.Llm is not { } llm || (llm.TimeoutSeconds > 0 && llm.MaxRetries >= 0),
            "selfplay.llm.timeout-seconds must be positive and max-retries non-negative");
        var inference = c.InferenceBackend;
        Check(inference.Backend is "local" or "openai", $"selfplay.inference.backend must be local or openai, got '{inference.Backend}'");
        Check(!inference.Remote || inference.Endpoint.Length > 0, "selfplay.inference.backend = openai needs inference.endpoint (e.g. http://127.0.0.1:8000/v1)");
        Check(!inference.Remote || c.Iterations.Count == 0 || c.Learner.LoraRank > 0,
            "selfplay.inference.backend = openai needs a LoRA learner (learner.lora.rank > 0): the server loads each version as an adapter, not as full weights");
        Check(inference.MaxConcurrency > 0 && inference.TimeoutSeconds > 0 && inference.MaxRetries >= 0 && inference.LogProbTolerance >= 0,
            "selfplay.inference.max-concurrency and timeout-seconds must be positive, max-retries and logprob-tolerance non-negative");
        Check(c.Environment.TrainTasks > 0, $"selfplay.environment.train-tasks must be positive, got {c.Environment.TrainTasks}");
        Check(c.Environment.MaxSteps > 0, "selfplay.environment.max-steps must be positive");
        Check(c.Environment.WrongAnswerReward is >= 0 and < 1, $"selfplay.environment.wrong-answer-reward must be in [0, 1), got {c.Environment.WrongAnswerReward}");
        Check(c.Model.HiddenSize > 0 && c.Model.Heads > 0 && c.Model.HiddenSize % c.Model.Heads == 0,
            $"selfplay.model.hidden-size ({c.Model.HiddenSize}) must be a positive multiple of model.heads ({c.Model.Heads})");
        Check(c.Model.KvHeads > 0 && c.Model.Heads % c.Model.KvHeads == 0, "selfplay.model.heads must be a multiple of model.kv-heads");
        Check(c.Model.Layers > 0 && c.Model.IntermediateSize > 0 && c.Model.Threads > 0 && c.Model.MaxStepTokens > 0,
            "selfplay.model sizes, threads and max-step-tokens must be positive");
        Check(c.Model.Device is "cpu" or "cuda" || c.Model.Device.StartsWith("cuda:", StringComparison.Ordinal),
            $"selfplay.model.device must be cpu, cuda or cuda:N, got '{c.Model.Device}'");
        Check(c.Model.DType is "float32" or "bfloat16", $"selfplay.model.dtype must be float32 or bfloat16, got '{c.Model.DType}'");
        Check(c.Model.PrefixCacheMb >= 0, $"selfplay.model.prefix-cache-mb must be 0 (off) or positive, got {c.Model.PrefixCacheMb}");
        Check(c.Warmup.Share is >= 0 and <= 1, $"selfplay.warmup.share must be in [0, 1], got {c.Warmup.Share}");
        Check(c.Warmup.TracesPerPuzzle > 0 && c.Warmup.Epochs >= 0 && c.Warmup.BatchSize > 0 && c.Warmup.LearningRate > 0,
            "selfplay.warmup: traces-per-puzzle, batch-size and learning-rate must be positive, epochs non-negative");
        Check(SearchAlgorithms.Validate(c.Search) is null, SearchAlgorithms.Validate(c.Search) ?? "");
        Check(LlmSelection.Validate(c.Search, c.Environment.Llm) is null, LlmSelection.Validate(c.Search, c.Environment.Llm) ?? "");
        Check(c.Search.Simulations > 0 && c.Search.Expansions > 0, "selfplay.search.simulations and expansions must be positive");
        Check(c.Search.Backup is "visit-weighted" or "mean-value", $"selfplay.search.backup must be visit-weighted or mean-value, got '{c.Search.Backup}'");
        Check(c.Iterations.Count >= 0 && c.Iterations.Trees > 0, "selfplay.iterations: count must be >= 0 and trees > 0");
        Check(c.PolicySource.ChatTemplate is "auto" or "none" or "chatml" or "llama3" or "mistral",
            $"selfplay.policy.chat-template must be auto, none, chatml, llama3 or mistral, got '{c.PolicySource.ChatTemplate}'");
        Check(c.PolicySource.EnvironmentTurn is "tool" or "assistant",
            $"selfplay.policy.environment-turn must be tool or assistant, got '{c.PolicySource.EnvironmentTurn}'");
        Check(c.PolicySource.ChatTemplate is "auto" or "none" || c.PolicySource.Checkpoint.Length > 0,
            $"selfplay.policy.chat-template = {c.PolicySource.ChatTemplate} needs policy.checkpoint (the character model has no chat tokens)");
        LearnerSettings.Validate(c.Preferences, c.Learner, Check);
        // SPaR's nodes are whole responses (a refinement is not a continuation of its parent), so only its own pairs read them right.
        Check(c.Search.Algorithm != "spar" || c.Preferences.Extractor == "spar",
            $"selfplay.search.algorithm = spar needs preferences.extractor = spar (its nodes are whole responses), got '{c.Preferences.Extractor}'");
        // The nodes carry only search.critic's scores; with mcts.value = agent-q that critic's ranking is already in Q.
        Check(c.Preferences.Critic.Length == 0 || c.Preferences.Critic == c.Search.Critic,
            $"selfplay.preferences.critic = {c.Preferences.Critic}: the nodes carry only search.critic's scores ('{c.Search.Critic}')");
        Check(c.Preferences.CriticWeight >= 1 || c.Search.Algorithm != "mcts" || c.Search.Mcts?.Value != "agent-q",
            "selfplay.preferences.critic-weight < 1 with search.mcts.value = agent-q counts the critic twice (the backup already mixed its ranking into Q); use critic-weight = 1");
        Check(c.Learner.Reference is "warmup" or "previous" or "behaviour", $"selfplay.learner.reference must be warmup, previous or behaviour, got '{c.Learner.Reference}'");
        Check(c.Learner.Window >= 1, $"selfplay.learner.window must be at least 1, got {c.Learner.Window}");
        Check(c.Learner.SftWeight >= 0, "selfplay.learner.sft-weight must be non-negative");
        Check(c.Learner.Beta > 0 && c.Learner.Epochs >= 0 && c.Learner.BatchSize > 0 && c.Learner.LearningRate > 0,
            "selfplay.learner: beta, batch-size and learning-rate must be positive, epochs non-negative");
        Check(c.Actors.SearchWorkers > 0 && c.Actors.InferenceBatchRows > 0
              && c.Actors.LeaseSeconds > 0 && c.Actors.AskTimeoutSeconds > 0 && c.Actors.EnvironmentActors > 0, "selfplay.actors settings must be positive");
        Check(c.Actors.EnvironmentPlacement is "local" or "cluster",
            $"selfplay.actors.environment-placement must be local or cluster, got '{c.Actors.EnvironmentPlacement}'");
        Check(c.Critic.Epochs >= 0 && c.Critic.BatchSize > 0 && c.Critic.LearningRate > 0 && c.Critic.MaxExamples >= 0,
            "selfplay.critic: batch-size and learning-rate must be positive, epochs and max-examples non-negative");
        Check(c.Critic.HeldOutShare is >= 0 and < 1, $"selfplay.critic.held-out-share must be in [0, 1), got {c.Critic.HeldOutShare}");
        Check(c.Security.SystemName.Length == 0 || System.Text.RegularExpressions.Regex.IsMatch(c.Security.SystemName, "^[A-Za-z0-9][A-Za-z0-9_-]*$"),
            $"selfplay.cluster.system-name must be letters, digits, '-' or '_', got '{c.Security.SystemName}'");
        Check(c.Security.TlsKey.Length == 0 || c.Security.TlsCertificate.Length > 0, "selfplay.cluster.tls.key needs cluster.tls.certificate");
        Check(c.Persistence.SnapshotNodes >= 0, $"selfplay.persistence.snapshot-nodes must be 0 (off) or more, got {c.Persistence.SnapshotNodes}");
        Check(c.Persistence.Provider is "sqlite" or "postgres", $"selfplay.persistence.provider must be sqlite or postgres, got '{c.Persistence.Provider}'");
        Check(c.Persistence.Provider != "postgres" || c.Persistence.ConnectionString.Length > 0,
            "selfplay.persistence.connection-string is required for postgres");
    }
}

using SelfPlay.Actors.Configuration;

namespace SelfPlay.Actors.Tests;

public class ConfigTests
{
    [Fact]
    public void A_set_value_is_a_literal_never_parsed_as_hocon()
    {
        const string tricky = "x\" }\n selfplay.iterations.count = 99 #";
        var hocon = ConfigLoader.Build(null, ["name=" + tricky]);
        Assert.Equal(tricky, hocon.GetString("selfplay.name"));
        Assert.Equal(ConfigLoader.Build(null, []).GetInt("selfplay.iterations.count"), hocon.GetInt("selfplay.iterations.count"));
        var c = ConfigLoader.Parse(ConfigLoader.Build(null, ["iterations.trees=7", "learner.learning-rate=1e-5", "eval.greedy=false"]));
        Assert.Equal((7, 1e-5, false), (c.Iterations.Trees, c.Learner.LearningRate, c.Eval.Greedy));
    }

    [Fact]
    public void Reference_defaults_parse_and_overrides_apply_in_order()
    {
        var defaults = ConfigLoader.Parse(ConfigLoader.Build(null, []));
        Assert.Equal("game24", defaults.Name);
        Assert.Equal("operation", defaults.Environment.StepMode);
        Assert.True(defaults.Environment.HeldOut >= 200);
        // The per-algorithm search settings of reference.conf are the records' documented defaults.
        Assert.Equal((new SelfPlay.Core.Config.MctsConfig(), new SelfPlay.Core.Config.BestFirstConfig(), new SelfPlay.Core.Config.BeamConfig(), new SelfPlay.Core.Config.DfsdtConfig(),
                new SelfPlay.Core.Config.SparConfig(), new SelfPlay.Core.Config.TreeRolloutConfig()),
            (defaults.Search.Mcts, defaults.Search.BestFirst, defaults.Search.Beam, defaults.Search.Dfsdt, defaults.Search.Spar, defaults.Search.TreeRollout));
        var spar = ConfigLoader.Parse(ConfigLoader.Build(null, ["search.algorithm=spar", "preferences.extractor=spar", "search.spar.mode=dfs", "search.mcts.commit-and-reuse=true"]));
        Assert.Equal(("spar", "dfs", true), (spar.Search.Algorithm, spar.Search.Spar!.Mode, spar.Search.Mcts!.CommitAndReuse));
        // refiner-feedback = auto: the character model is not shown the critique, a pretrained checkpoint is.
        Assert.Equal("none", spar.Search.Spar.RefinerFeedback);
        Assert.Equal("critique", ConfigLoader.Parse(ConfigLoader.Build(null, ["policy.checkpoint=/models/qwen"])).Search.Spar!.RefinerFeedback);
        Assert.Equal("critique", ConfigLoader.Parse(ConfigLoader.Build(null, ["search.spar.refiner-feedback=critique"])).Search.Spar!.RefinerFeedback);

        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "selfplay { search.simulations = 7, iterations { count = 5 } }");
            var c = ConfigLoader.Parse(ConfigLoader.Build(file, ["search.simulations=9", "selfplay.learner.loss=cdpo"]));
            Assert.Equal(9, c.Search.Simulations);      // --set wins over the file
            Assert.Equal(5, c.Iterations.Count);        // the file wins over reference.conf
            Assert.Equal("cdpo", c.Learner.Loss);
            Assert.Equal(defaults.Model, c.Model);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Every_shipped_campaign_file_parses_and_is_named_after_its_file()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "SelfPlay.sln"))) dir = dir.Parent;
        Assert.NotNull(dir);
        var files = Directory.GetFiles(Path.Combine(dir.FullName, "hocon", "campaigns"), "*.conf");
        Assert.True(files.Length >= 12, $"{files.Length} campaign files");
        foreach (var file in files)
        {
            var c = ConfigLoader.Parse(ConfigLoader.Build(file, []));
            Assert.Equal(Path.GetFileNameWithoutExtension(file), c.Name);
            // A quick file is the smoke test of its full campaign: same environment.
            if (c.Name.EndsWith("-quick", StringComparison.Ordinal))
                Assert.Equal(ConfigLoader.Parse(ConfigLoader.Build(file.Replace("-quick.conf", ".conf"), [])).Environment.Type, c.Environment.Type);
        }
    }

    [Theory]
    [InlineData("search.simulatons=3", "unknown setting selfplay.search.simulatons")]
    [InlineData("search=3", "unknown setting selfplay.search")]
    [InlineData("nonsense", "--set expects key=value")]
    [InlineData("search.simulations=many", "selfplay.search.simulations")]
    [InlineData("environment.step-mode=telepathy", "step-mode must be operation or whole-step")]
    [InlineData("search.algorithm=alphago", "search.algorithm must be one of mcts, best-first, spar, beam, dfsdt, tree-rollout")]
    [InlineData("search.mcts.value=magic", "search.mcts.value must be critic, mcts-dpo, signed-outcome or agent-q")]
    [InlineData("search.mcts.commit-and-reuse=maybe", "selfplay.search.mcts.commit-and-reuse")]
    [InlineData("search.spar.end-gate=1", "search.spar.end-gate must be in [0, 1)")]
    [InlineData("search.spar.refiner-feedback=hint", "search.spar.refiner-feedback must be auto, critique or none, got 'hint'")]
    [InlineData("inference.backend=vllm", "selfplay.inference.backend must be local or openai, got 'vllm'")]
    [InlineData("inference.backend=openai", "inference.backend = openai needs inference.endpoint")]
    [InlineData("inference.api-key=sk-1", "selfplay.inference.api-key: a literal key is refused")]
    [InlineData("inference.max-concurrency=0", "selfplay.inference.max-concurrency and timeout-seconds must be positive")]
    [InlineData("search.tree-rollout.branch-depths=a", "branch-depths must be comma-separated depths")]
    [InlineData("persistence.provider=oracle", "provider must be sqlite or postgres")]
    [InlineData("persistence.snapshot-nodes=-1", "snapshot-nodes must be 0 (off) or more")]
    [InlineData("model.dtype=float16", "selfplay.model.dtype must be float32 or bfloat16, got 'float16'")]
    [InlineData("model.prefix-cache-mb=-1", "selfplay.model.prefix-cache-mb must be 0 (off) or positive, got -1")]
    [InlineData("model.prefix-cache-mb=lots", "selfplay.model.prefix-cache-mb")]
    [InlineData("learner.dtype=float64", "selfplay.learner.dtype must be float32 or bfloat16, got 'float64'")]
    [InlineData("learner.lora.rank=-1", "selfplay.learner.lora: rank must be 0 (full fine-tuning) or positive")]
    [InlineData("learner.lora.dropout=1", "dropout in [0, 1)")]
    [InlineData("learner.held-out-share=1", "selfplay.learner: held-out-share must be in [0, 1) and patience at least 1, got 1, 1")]
    [InlineData("learner.patience=0", "patience at least 1, got 0, 0")]
    public void Bad_overrides_fail_with_one_line(string set, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(ConfigLoader.Build(null, [set])));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    /// <summary>Settings that are each valid alone but mean nothing together (separated by ';').</summary>
    [Theory]
    [InlineData("search.algorithm=spar", "search.algorithm = spar needs preferences.extractor = spar (its nodes are whole responses), got 'mcts-dpo'")]
    [InlineData("preferences.extractor=agent-q;preferences.critic-weight=0.5", "critic-weight = 0.5 needs preferences.critic = the critic whose score it mixes in")]
    [InlineData("preferences.critic-weight=0.5;preferences.critic=llm", "preferences.critic = llm: the nodes carry only search.critic's scores ('verifier')")]
    [InlineData("search.mcts.value=agent-q;preferences.critic-weight=0.5;preferences.critic=verifier", "counts the critic twice")]
    [InlineData("search.mcts.value=mcts-dpo", "search.mcts.value = mcts-dpo needs a self-evaluating critic")]
    [InlineData("learner.loss=cdpo;preferences.extractor=tree-plv", "cdpo takes its ε from visit counts, which only preferences.extractor = mcts-dpo gives, got 'tree-plv'")]
    [InlineData("preferences.extractor=tree-plv;preferences.margin=0", "preferences.margin must be positive for tree-plv")]
    [InlineData("inference.backend=openai;inference.endpoint=http://127.0.0.1:8000/v1", "inference.backend = openai needs a LoRA learner (learner.lora.rank > 0)")]
    [InlineData("learner.loss=sft", "selfplay.learner.loss 'sft' cannot train on the pair examples of preferences.extractor 'mcts-dpo'")]
    [InlineData("preferences.extractor=solved-paths", "selfplay.learner.loss 'dpo' cannot train on the demonstration examples of preferences.extractor 'solved-paths'")]
    [InlineData("preferences.extractor=visit-distribution", "selfplay.learner.loss 'dpo' cannot train on the distribution examples of preferences.extractor 'visit-distribution'")]
    [InlineData("learner.loss=policy-ce", "selfplay.learner.loss 'policy-ce' cannot train on the pair examples of preferences.extractor 'mcts-dpo'")]
    [InlineData("learner.loss=policy-ce;preferences.extractor=visit-distribution;preferences.visit-temperature=0", "selfplay.preferences.visit-temperature must be positive, got 0")]
    [InlineData("learner.lora.rank=8;learner.lora.target-modules=q,lm_head", "selfplay.learner.lora.target-modules: unknown target module 'lm_head' (any of q,k,v,o,gate,up,down)")]
    public void Combinations_that_mean_nothing_fail_with_one_line(string sets, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(ConfigLoader.Build(null, sets.Split(';'))));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_named_critic_mixes_in_where_the_backup_did_not_use_it()
    {
        var c = ConfigLoader.Parse(ConfigLoader.Build(null, ["preferences.extractor=agent-q", "preferences.critic-weight=0.5", "preferences.critic=verifier"]));
        Assert.Equal(("verifier", 0.5), (c.Preferences.Critic, c.Preferences.CriticWeight));
        Assert.Equal("verifier", SelfPlay.Actors.Learning.LearnerSettings.Extractor(c.Preferences).Critic);
    }

    [Fact]
    public void Campaign_files_are_checked()
    {
        Assert.Contains("not found", Assert.Throws<ConfigException>(() => ConfigLoader.Build("/no/such/file.conf", [])).Message);
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "selfplay { learner { bta = 0.2 } }");
            Assert.Contains("unknown setting selfplay.learner.bta", Assert.Throws<ConfigException>(() => ConfigLoader.Build(file, [])).Message);
            // Akka's HOCON parser accepts a truncated file; the missing value is still caught, by name.
            File.WriteAllText(file, "selfplay { learner { beta = ");
            Assert.Contains("selfplay.learner.beta", Assert.Throws<ConfigException>(() => ConfigLoader.Parse(ConfigLoader.Build(file, []))).Message);
        }
        finally
        {
            File.Delete(file);
        }
    }
}

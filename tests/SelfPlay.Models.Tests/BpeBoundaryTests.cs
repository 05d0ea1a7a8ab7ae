using SelfPlay.Core.Preferences;
using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Generation;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Training;
using SelfPlay.Tests.Shared;

namespace SelfPlay.Models.Tests;

/// <summary>Text and token boundaries with a real byte-level BPE tokenizer.json whose merges cross step boundaries.</summary>
public sealed class BpeBoundaryTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "selfplay-bpe-" + Guid.NewGuid().ToString("N"));

    public BpeBoundaryTests() => Directory.CreateDirectory(_dir);

    HfTokenizer Tokenizer(bool qwen2, string name)
    {
        var dir = Path.Combine(_dir, name);
        HfTestCheckpoint.Create(dir, qwen2);
        return HfTokenizer.Load(dir, Checkpoint.ReadConfig(dir));
    }

    [Fact]
    public void Merges_cross_the_step_boundaries_and_bos_is_what_the_post_processor_adds()
    {
        var vocab = HfTestCheckpoint.Vocabulary();
        var qwen = Tokenizer(qwen2: true, "qwen2");
        // BPE by hand: " =" and ")\n" are merges of their own; digits stay single (Qwen2's \p{N}); " (" then "left".
        Assert.Equal(new[] { vocab["5"], vocab["Ġ*"], vocab["Ġ"], vocab["4"], vocab["Ġ="], vocab["Ġ"], vocab["2"], vocab["0"], vocab["Ġ("], vocab["left"], vocab[":"],
            vocab["Ġ"], vocab["6"], vocab[")Ċ"] }, qwen.Encode("5 * 4 = 20 (left: 6)\n"));
        Assert.Equal("5 * 4 = 20 (left: 6)\n", qwen.Decode(qwen.Encode("5 * 4 = 20 (left: 6)\n")));
        Assert.Equal("Ġ=", qwen.TokenText(vocab["Ġ="]));
        // Qwen2: no BOS although config.json names a bos_token_id (Hugging Face adds none).
        Assert.Null(qwen.BosId);
        Assert.Equal(qwen.Encode("Input: 1"), qwen.EncodePrompt("Input: 1"));
        // Llama's TemplateProcessing adds its BOS.
        var llama = Tokenizer(qwen2: false, "llama");
        Assert.Equal(vocab[HfTestCheckpoint.EndOfText], llama.BosId);
        Assert.Equal([vocab[HfTestCheckpoint.EndOfText], .. llama.Encode("Input: 1")], llama.EncodePrompt("Input: 1"));
    }

    [Fact]
    public void Text_parts_map_to_the_tokens_of_the_whole_text_by_their_first_character()
    {
        var qwen = Tokenizer(qwen2: true, "parts");
        // The policy wrote "6 -" and stopped at " =", the environment wrote " 2 (left: 2)\n": " =" belongs to the policy.
        var (ids, partOf) = PolicyEncoding.Encode(qwen, ["Input: 8 6\n", "8 - 6 =", " 2 (left: 2)\n"]);
        Assert.Equal(qwen.Encode("Input: 8 6\n8 - 6 = 2 (left: 2)\n"), ids);
        var policy = ids.Where((_, i) => partOf[i] == 1).ToArray();
        Assert.Equal(qwen.Encode("8 - 6 ="), policy);
        Assert.Contains(HfTestCheckpoint.Vocabulary()[")Ċ"], ids.Where((_, i) => partOf[i] == 2));
    }

    [Fact]
    public void Parts_after_chat_markers_map_to_their_own_tokens()
    {
        // Special tokens (the template's markers) decode to nothing but are text of the state: their characters count,
        // or every part after a marker maps to the tokens of the text before it.
        var qwen = Tokenizer(qwen2: true, "markers");
        var template = ChatTemplate.ChatMl;
        var (open, close) = template.EnvironmentTurn;
        string[] parts = [template.RenderPrompt("Input: 8 6"), "8 - 6 =", open + " 2 (left: 2)\n" + close, "2 * 12 ="];
        var (ids, partOf) = PolicyEncoding.Encode(qwen, parts);
        var text = string.Concat(parts);
        Assert.Equal(text.Length, qwen.EncodeWithEnds(text).Ends[^1]);
        Assert.Equal(qwen.Encode("8 - 6 ="), ids.Where((_, i) => partOf[i] == 1).ToArray());
        Assert.Equal(qwen.Encode("2 * 12 ="), ids.Where((_, i) => partOf[i] == 3).ToArray());
        var imStart = HfTestCheckpoint.Vocabulary()[HfTestCheckpoint.ImStart];
        Assert.Equal(2, ids.Where((_, i) => partOf[i] == 2).Count(id => id == imStart));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Token_ends_in_linear_time_are_the_ends_of_decoding_every_prefix(bool qwen2)
    {
        // The reference: each end is the special tokens' text so far plus the decode of the ordinary tokens so far.
        var tokenizer = Tokenizer(qwen2, qwen2 ? "ends-qwen2" : "ends-llama");
        var template = ChatTemplate.ChatMl;
        string[] texts =
        [
            "Input: 8 6\n8 - 6 = 2 (left: 2)\n",
            template.RenderPrompt("Input: 4 5 6 10") + "5 * 4 =" + template.EnvironmentTurn.Open + " 20 (left: 6 10 20)\n" + template.EnvironmentTurn.Close,
            "caf\u00e9 costs 3\u20ac, \u00fcber 2 \U0001F600 (left: \u00e9\u00e9)\n", // two-, three- and four-byte characters
            "",
            string.Concat(Enumerable.Repeat("lookup[Paris] = 2148000\n", 40)),
        ];
        foreach (var text in texts)
        {
            var (ids, ends) = tokenizer.EncodeWithEnds(text);
            Assert.Equal(tokenizer.Encode(text), ids);
            var (special, ordinary) = (0, new List<int>());
            for (var i = 0; i < ids.Length; i++)
            {
                if (tokenizer.Decode([ids[i]]).Length == 0 && tokenizer.TokenText(ids[i]).StartsWith("<|", StringComparison.Ordinal)) special += tokenizer.TokenText(ids[i]).Length;
                else ordinary.Add(ids[i]);
                Assert.Equal(special + tokenizer.Decode(ordinary).Length, ends[i]);
            }
            if (ids.Length > 0) Assert.Equal(text.Length, ends[^1]);
        }
    }

    [Fact]
    public void Stored_log_probs_count_only_when_the_step_re_encodes_to_the_generated_tokens_else_they_are_re_scored()
    {
        var dir = Path.Combine(_dir, "model");
        HfTestCheckpoint.Create(dir, qwen2: true);
        var (model, tokenizer, _) = Checkpoint.Load(dir);
        using (model)
        {
            var vocab = HfTestCheckpoint.Vocabulary();
            int[] merged = [vocab["8"], vocab["Ġ-"], vocab["Ġ"], vocab["6"], vocab["Ġ="]];
            int[] split = [vocab["8"], vocab["Ġ-"], vocab["Ġ"], vocab["6"], vocab["Ġ"], vocab["="]]; // the same text, " =" unmerged
            Candidate Step(int[] ids) => new([new CompletionStep("8 - 6 = 2 (left: 2)\n", ids, [.. ids.Select(_ => -1.5f)])], 1);
            var (_, stepOf, aligned) = PreferenceData.EncodeAligned(tokenizer, "Input: 8 6\n", Step(merged));
            Assert.True(aligned);
            Assert.Equal(merged.Length, stepOf.Length);
            Assert.False(PreferenceData.EncodeAligned(tokenizer, "Input: 8 6\n", Step(split)).Aligned);

            var examples = new[] { new PreferenceExample(ExampleKind.Pair, "t", "Input: 8 6\n", [Step(merged), Step(split)]) };
            var prepared = PreferenceData.Prepare(examples, tokenizer, ReferenceSource.Behaviour, model)[0];
            Assert.All(prepared.Candidates[0].Reference, v => Assert.Equal(-1.5f, v)); // its own log-probs
            Assert.Equal(prepared.Candidates[0].Tokens, prepared.Candidates[1].Tokens); // trained on the same, re-encoded tokens
            Assert.DoesNotContain(-1.5f, prepared.Candidates[1].Reference);             // re-scored by the model, not reused
            Assert.Equal(prepared.Candidates[1].Reference, prepared.Candidates[1].Behaviour); // the re-scored values stand for both
            Assert.Contains("match its tokens", Assert.Throws<InvalidDataException>(() =>
                PreferenceData.Prepare(examples, tokenizer, ReferenceSource.Behaviour)).Message);
        }
    }

    [Fact]
    public void A_character_checkpoint_is_a_hugging_face_folder_whose_tokenizer_json_gives_the_same_ids()
    {
        var dir = Path.Combine(_dir, "char");
        var tokenizer = new CharTokenizer();
        using (var model = new SelfPlay.Models.Llama.LlamaForCausalLM(new SelfPlay.Models.Llama.LlamaConfig(tokenizer.VocabSize, 16, 32, 1, 2, 1), 1))
            Checkpoint.Save(model, tokenizer, dir, 0, "game24");
        foreach (var file in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
            Assert.True(File.Exists(Path.Combine(dir, file)), file);
        // The WordLevel tokenizer.json, read by the Rust tokenizers library, is the character tokenizer.
        using var hf = HfTokenizer.Load(dir, Checkpoint.ReadConfig(dir));
        const string text = "Input: 4 5 6 10\n5 * 4 = 20 (left: 6 10 20)\nAnswer: ok";
        Assert.Equal(tokenizer.Encode(text), hf.Encode(text));
        Assert.Equal(tokenizer.EncodePrompt(text), hf.EncodePrompt(text));
        Assert.Equal(text, hf.Decode(hf.Encode(text)));
        Assert.Equal(tokenizer.VocabSize, hf.VocabSize);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}

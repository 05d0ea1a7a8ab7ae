using SelfPlay.Models.Checkpoints;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Scoring;
using SelfPlay.Models.Tokenization;
using SelfPlay.Models.Training;
using static TorchSharp.torch;

namespace SelfPlay.Models.Tests;

public class TokenizerAndScoringTests
{
    static string TokenizerDir => Path.Combine(AppContext.BaseDirectory, "Tokenizer");

    [Fact]
    public void Hugging_face_tokenizer_json_encodes_decodes_and_knows_its_special_tokens()
    {
        using var tokenizer = HfTokenizer.Load(TokenizerDir);
        Assert.Equal([14, 19, 20], tokenizer.Encode("hello world!"));          // BPE merges of tokenizer.json
        Assert.Equal([1, 14, 19, 20], tokenizer.EncodePrompt("hello world!"));
        Assert.Equal("hello world!", tokenizer.Decode([1, 14, 19, 20, 22]));    // special tokens are left out
        Assert.Equal(1, tokenizer.BosId);
        Assert.Equal([22], tokenizer.EosIds);                                  // eos_token of tokenizer_config.json
        Assert.Equal(0, tokenizer.PadId);
        Assert.Equal(32, tokenizer.VocabSize);
        Assert.Equal(ChatTemplate.ChatMl, tokenizer.ChatTemplate);
        var chat = tokenizer.EncodeChat([new ChatMessage("user", "hello")]);
        Assert.Equal([1, 21, 24, 25, 4, 9, 23, 14, 22, 23, 21, 26, 25, 25, 29, 25, 27, 26, 28, 27, 23], chat);
    }

    [Fact]
    public void Chat_templates_render_the_known_formats()
    {
        ChatMessage[] messages = [new("system", "Be brief."), new("user", "Hi"), new("assistant", "Hello"), new("user", "24?")];
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\n24?<|im_end|>\n<|im_start|>assistant\n",
            ChatTemplate.Detect("{{ '<|im_start|>' }}").Render(messages));
        Assert.StartsWith("<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>", ChatTemplate.Detect("<|start_header_id|>").Render(messages));
        Assert.Equal("[INST] Be brief.\n\nHi [/INST]Hello</s>[INST] 24? [/INST]", ChatTemplate.Detect("[INST]").Render(messages));
        Assert.Equal(ChatTemplate.Plain, ChatTemplate.Detect(null));
        Assert.Throws<InvalidDataException>(() => ChatTemplate.Detect("{{ unknown }}"));
    }

    [Theory]
    [InlineData("chatml", "user", "tool")]
    [InlineData("llama3", "user", "ipython")]
    [InlineData("mistral", "user", "user")]
    [InlineData("plain", "user", "tool")]
    public void A_rendered_prompt_with_steps_and_environment_turns_reads_back_as_its_turns(string kind, string userRole, string toolRole)
    {
        var template = new ChatTemplate(kind);
        var (open, close) = template.EnvironmentTurn;
        // What a formatted environment writes: the prompt (user turn, assistant opened), a step whose result is an
        // environment turn, then a last step in the reopened assistant turn.
        var text = template.RenderPrompt("Input: 4 5 6 10") + "5 * 4 =" + open + " 20 (left: 6 10 20)" + close + "answer 24";
        var turns = template.Parse(text).Select(m => (m.Role, m.Content)).ToList();
        Assert.Equal([(userRole, "Input: 4 5 6 10"), ("assistant", "5 * 4 ="), (toolRole, " 20 (left: 6 10 20)"), ("assistant", "answer 24")], turns);
        // The prompt alone is its user turn (the opened, empty assistant turn is no turn).
        Assert.Equal([(userRole, "Input: 4 5 6 10")], template.Parse(template.RenderPrompt("Input: 4 5 6 10")).Select(m => (m.Role, m.Content)));
    }

    [Fact]
    public void Tokenizers_load_the_checkpoints_kind_and_reject_broken_files()
    {
        var dir = Path.Combine(Path.GetTempPath(), "selfplay-tok-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, Checkpoint.ConfigFile), new LlamaConfig(32, 16, 32, 1, 2, 1).ToJson());
            Assert.Null(TokenizerFiles.Load(dir));
            File.Copy(Path.Combine(TokenizerDir, HfTokenizer.FileName), Path.Combine(dir, HfTokenizer.FileName));
            Assert.IsType<HfTokenizer>(TokenizerFiles.Load(dir));
            File.WriteAllText(Path.Combine(dir, HfTokenizer.ConfigFileName), "{\"bos_token\": \"<nope>\"}");
            Assert.Contains("tokenizer_config.json: bos_token \"<nope>\"", Assert.Throws<InvalidDataException>(() => TokenizerFiles.Load(dir)).Message);
            File.WriteAllText(Path.Combine(dir, HfTokenizer.FileName), "{ broken");
            Assert.Contains("tokenizer.json is not valid JSON", Assert.Throws<InvalidDataException>(() => TokenizerFiles.Load(dir)).Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Completion_scores_match_sequence_scoring_with_sum_mean_and_span()
    {
        var tok = new CharTokenizer();
        using var model = new LlamaForCausalLM(new LlamaConfig(tok.VocabSize, 32, 64, 2, 4, 2), 21);
        var prompt = tok.EncodePrompt("Input: 1 2 3 4\n");
        ScoreRequest[] requests = [new(prompt, tok.Encode("1 + 2 = 3")), new(prompt[..3], tok.Encode("x"), 0, 1), new(prompt, tok.Encode("abcdef"), 2, 4)];
        var scores = CompletionScorer.Score(model, requests, batchSize: 2);
        var sums = SequenceScorer.SumLogProbs(model, requests.Select(r => ScoredSequence.PromptCompletion(r.PromptIds, r.CompletionIds)).ToList());
        for (var i = 0; i < requests.Length; i++)
        {
            Assert.Equal(requests[i].CompletionIds.Length, scores[i].TokenLogProbs.Length);
            Assert.Equal(sums[i], scores[i].Sum, 3);
            Assert.Equal(scores[i].Sum / requests[i].CompletionIds.Length, scores[i].Mean, 6);
            Assert.All(scores[i].TokenLogProbs, lp => Assert.True(lp < 0));
        }
        Assert.Equal(scores[0].Sum, scores[0].SpanSum, 6);
        Assert.Equal(scores[2].TokenLogProbs[2] + scores[2].TokenLogProbs[3], scores[2].SpanSum, 5);
        // Scoring token by token with a full forward gives the same first log-prob.
        using (no_grad())
        using (NewDisposeScope())
        {
            var ids = tensor(prompt.Select(i => (long)i).ToArray(), [1, prompt.Length]);
            var first = model.Forward(ids)[0, -1].log_softmax(-1)[requests[0].CompletionIds[0]].item<float>();
            Assert.Equal(first, scores[0].TokenLogProbs[0], 4);
        }
        Assert.Throws<ArgumentException>(() => { CompletionScorer.Score(model, [new ScoreRequest(prompt, [999])]); });
        Assert.Throws<ArgumentException>(() => { CompletionScorer.Score(model, [new ScoreRequest(prompt, [5], 0, 2)]); });
    }
}

using SelfPlay.Core.Search;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;

namespace SelfPlay.Models.Generation;

/// <summary>
/// A policy model as the search's expander: text states in, proposed steps out, all requests of a call in one
/// batched generation. Synchronous underneath (tensor work never spans an await); the inference actor calls it.
/// With a prefix cache, the KV of states already expanded (and of the steps sampled from them) is reused, so deeper
/// nodes and siblings forward only their new tokens. Owns the model and the cache.
/// A step ends at the stop string in the decoded text (with BPE it may sit inside a token, as Qwen2's ")\n" or " ="
/// do) or at EOS; the action is the text before the stop, the tokens are all that were generated (the learner
/// re-encodes the step's text and checks them, see <see cref="Training.PreferenceData.EncodeAligned"/>).
/// </summary>
public sealed class PolicyStepProposer(LlamaForCausalLM model, ITokenizer tokenizer, string stepStop, int maxStepTokens,
    PrefixCache? prefixCache = null) : IStepProposer, IDisposable
{
    readonly int[] _stop = tokenizer.Encode(stepStop);

    public LlamaForCausalLM Model => model;

    /// <summary>Tokens forwarded, prompt tokens asked for and prompt tokens taken from the prefix cache, over every call.</summary>
    public GenerationStats Stats { get; } = new();

    public IReadOnlyList<IReadOnlyList<ProposedStep>> Propose(IReadOnlyList<ProposalRequest> requests)
    {
        if (requests.Count == 0) return [];
        var samples = Sampler.Generate(model,
            requests.Select(r => new SampleRequest(PolicyEncoding.Prompt(tokenizer, r.State), r.Count, r.Temperature, maxStepTokens, [_stop])
                { Seed = r.Seed, StopStrings = [stepStop] }).ToList(),
            requests[0].Seed, new GenerationOptions { PrefixCache = prefixCache, Stats = Stats, Decode = ids => tokenizer.Decode(ids) });
        return samples.Select(perRequest => (IReadOnlyList<ProposedStep>)perRequest.Select(ToStep).ToArray()).ToArray();
    }

    ProposedStep ToStep(Sample sample)
    {
        var text = tokenizer.Decode(sample.TokenIds);
        var stop = sample.Stopped ? text.IndexOf(stepStop, StringComparison.Ordinal) : -1;
        var action = stop >= 0 ? text[..stop] : text;
        return new ProposedStep(action, sample.TokenIds, sample.LogProbs);
    }

    public Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken cancellationToken = default) =>
        Task.FromResult(Propose(requests));

    public void Dispose()
    {
        prefixCache?.Dispose();
        model.Dispose();
    }
}

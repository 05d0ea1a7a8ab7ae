using SelfPlay.Core.Search;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;

namespace SelfPlay.Models.Generation;

/// <summary>
/// A policy model as the search's expander: text states in, proposed steps out, all requests of a call in one
/// batched generation. Synchronous underneath (tensor work never spans an await); the inference actor calls it.
/// </summary>
public sealed class PolicyStepProposer(LlamaForCausalLM model, CharTokenizer tokenizer, string stepStop, int maxStepTokens) : IStepProposer
{
    readonly int[] _stop = tokenizer.Encode(stepStop);

    public LlamaForCausalLM Model => model;

    public IReadOnlyList<IReadOnlyList<ProposedStep>> Propose(IReadOnlyList<ProposalRequest> requests)
    {
        if (requests.Count == 0) return [];
        var samples = Sampler.Generate(model,
            requests.Select(r => new SampleRequest(PolicyEncoding.Prompt(tokenizer, r.State), r.Count, r.Temperature, maxStepTokens, [_stop])).ToList(),
            requests[0].Seed);
        return samples.Select(perRequest => (IReadOnlyList<ProposedStep>)perRequest.Select(ToStep).ToArray()).ToArray();
    }

    ProposedStep ToStep(Sample sample)
    {
        var text = tokenizer.Decode(sample.TokenIds);
        var action = sample.Stopped && text.EndsWith(stepStop, StringComparison.Ordinal) ? text[..^stepStop.Length] : text;
        return new ProposedStep(action, sample.TokenIds, sample.LogProbs);
    }

    public Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken cancellationToken = default) =>
        Task.FromResult(Propose(requests));
}

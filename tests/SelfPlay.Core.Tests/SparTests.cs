using SelfPlay.Core.Environments;
using SelfPlay.Core.Preferences;
using SelfPlay.Core.Search;
using SelfPlay.Core.Trees;
using SelfPlay.Samples.Instructions;

namespace SelfPlay.Core.Tests;

/// <summary>Judge votes from a script of the response: one string of Y/N/? per judging round (rounds repeat the last).</summary>
internal sealed class ScriptedJudge(Dictionary<string, string[]> votes) : IJudge
{
    public string Name => "scripted-judge";
    public List<string> Judged { get; } = [];

    public Task<IReadOnlyList<Judgement>> JudgeAsync(EnvTask task, string response, int samples, long seed, CancellationToken cancellationToken = default)
    {
        var rounds = votes[response];
        var round = rounds[Math.Min(Judged.Count(r => r == response), rounds.Length - 1)];
        Judged.Add(response);
        return Task.FromResult<IReadOnlyList<Judgement>>(round.Select((v, i) => new Judgement(
            v switch { 'Y' => Verdict.Yes, 'N' => Verdict.No, _ => Verdict.Unparsable }, $"{response}:{v}{i}")).ToArray());
    }
}

/// <summary>Actor samples and refinements from a script: a response's refinements are "response.1", "response.2", ...</summary>
internal sealed class ScriptedRefiner(params string[] samples) : IRefiner
{
    public List<string> Refined { get; } = [];

    public Task<IReadOnlyList<Response>> SampleAsync(EnvTask task, int count, long seed, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<Response>>(samples.Take(count).Select(s => new Response(s, [1, 2], [-0.1f, -0.2f], 2)).ToArray());

    public Task<IReadOnlyList<IReadOnlyList<Response>>> RefineAsync(EnvTask task, IReadOnlyList<RefineRequest> requests, CancellationToken cancellationToken = default)
    {
        Refined.AddRange(requests.Select(r => r.Response));
        return Task.FromResult<IReadOnlyList<IReadOnlyList<Response>>>(requests.Select(r =>
            (IReadOnlyList<Response>)Enumerable.Range(1, r.Count).Select(i => new Response($"{r.Response}.{i}", [3], [-0.3f], 1)).ToArray()).ToArray());
    }
}

public class SparTests
{
    static readonly EnvTask Task0 = new("p", "prompt");
    static readonly ToyTreeEnvironment Env = new(1, new Dictionary<string, double>());

    static Judgement J(char v) => new(v switch { 'Y' => Verdict.Yes, 'N' => Verdict.No, _ => Verdict.Unparsable }, "c" + v);

    [Fact]
    public void Votes_match_the_worked_example()
    {
        // algorithms.md §2.7: [Yes, Yes, No, Yes, No] ⇒ 3/5 = .6 > .5: accepted.
        var accepted = Vote.Tally("YYNYN".Select(J).ToList());
        Assert.Equal(0.6, accepted.Value, 1e-12);
        Assert.Equal(Verdict.Yes, accepted.Majority);
        Assert.Equal("cY", accepted.Critique);
        // [Yes, No, No, No, unparsable] ⇒ 1/4 = .25: the unparsable vote does not count; the critique is a "No" one.
        var failing = Vote.Tally("YNNN?".Select(J).ToList());
        Assert.Equal(0.25, failing.Value, 1e-12);
        Assert.Equal((1, 3, 1), (failing.Yes, failing.No, failing.Unparsable));
        Assert.Equal("cN", failing.Critique);
        Assert.True(Vote.Tally("YN??".Select(J).ToList()).IsTie);
    }

    static Dictionary<string, string[]> Votes(params (string Response, string Votes)[] v) => v.ToDictionary(x => x.Response, x => x.Votes.Split('|'));

    [Fact]
    public async Task Bfs_refines_the_failing_response_and_stops_at_the_first_refinement_above_the_gate()
    {
        var judge = new ScriptedJudge(Votes(("ok", "YYY"), ("bad", "NNY"), ("bad.1", "NNN"), ("bad.2", "YNN"), ("bad.3", "NNN"),
            ("bad.2.1", "NNN"), ("bad.2.2", "YYN"), ("bad.2.3", "NNN"), ("bad.1.1", "YYY"), ("bad.1.2", "NNN"), ("bad.1.3", "NNN")));
        var refiner = new ScriptedRefiner("ok", "bad");
        var tree = await new SparSearch(Env, refiner, judge, new SparOptions(Branch: 3, SelectBranch: 2, MaxDepth: 3, JudgeSamples: 3, ActorSamples: 2))
            .SearchAsync("spar", Task0);
        // Depth 0: bad → bad.1 (0), bad.2 (1/3), bad.3 (0); none passes; greedy keeps bad.2, then bad.1 (earlier of the zeros).
        // Depth 1: bad.2 → bad.2.2 (2/3) and bad.1 → bad.1.1 (1): the best, 1 > .5, ends the search.
        Assert.Equal(new[] { "bad", "bad.2", "bad.1" }, refiner.Refined);
        var answer = tree.Nodes.Single(n => n.Committed);
        Assert.Equal("bad.1.1", answer.Action);
        Assert.Equal(1.0, answer.Value);
        Assert.Equal("bad.1.1:Y0", answer.Critique);
        Assert.Equal(tree.Nodes.Single(n => n.Action == "bad").Index, tree.Nodes[tree.Nodes.Single(n => n.Action == "bad.1").Index].Parent);
        Assert.Equal(1.0 / 3, tree.Nodes.Single(n => n.Action == "bad").Value, 1e-12);
        Assert.Equal(3, tree.Nodes.Single(n => n.Action == "bad").Visits);    // counted votes
        Assert.True(tree.Solved);
        GoldenTrees.AssertWellFormed(tree);
    }

    [Fact]
    public async Task End_gate_is_strict_ties_are_resampled_then_dropped_and_the_budget_caps_refinements()
    {
        // Gate .6: a refinement at exactly .6 does not end the search.
        var judge = new ScriptedJudge(Votes(("bad", "NNNNN"), ("bad.1", "YYYNN"), ("bad.2", "YN?|YYN"), ("bad.1.1", "YN|YN|YN|YN"),
            ("bad.1.2", "NNNNY"), ("bad.2.1", "YYYYN"), ("bad.2.2", "NNNNN")));
        var refiner = new ScriptedRefiner("bad");
        var tree = await new SparSearch(Env, refiner, judge, new SparOptions(Branch: 2, SelectBranch: 2, MaxDepth: 3, EndGate: 0.6, JudgeSamples: 5,
            JudgeResamples: 3, ActorSamples: 1)).SearchAsync("spar", Task0);
        Assert.Equal(0.6, tree.Nodes.Single(n => n.Action == "bad.1").Value, 1e-12);
        Assert.Equal(2.0 / 3, tree.Nodes.Single(n => n.Action == "bad.2").Value, 1e-12);  // tied first round, judged again
        Assert.Equal(2, judge.Judged.Count(r => r == "bad.2"));
        Assert.Equal("bad.2", tree.Nodes.Single(n => n.Committed).Action);                 // 2/3 > .6 ends the search at depth 0
        Assert.Equal(new[] { "bad" }, refiner.Refined);

        // A vote that stays tied is dropped (1 + 3 resamples); the judge is asked once per distinct text.
        var judge2 = new ScriptedJudge(Votes(("bad", "NNNNN"), ("bad.1", "YN"), ("bad.2", "NNNNY"), ("bad.2.1", "NNNNN"), ("bad.2.2", "NNNNN"),
            ("bad.2.1.1", "NNNNN"), ("bad.2.1.2", "NNNNN"), ("bad.2.2.1", "NNNNN")));
        var refiner2 = new ScriptedRefiner("bad");
        var tree2 = await new SparSearch(Env, refiner2, judge2, new SparOptions(Branch: 2, SelectBranch: 2, MaxDepth: 5, Budget: 5, ActorSamples: 1))
            .SearchAsync("spar", Task0);
        Assert.DoesNotContain(tree2.Nodes, n => n.Action == "bad.1");
        Assert.Equal(4, judge2.Judged.Count(r => r == "bad.1"));
        Assert.Equal(5 - 1, tree2.Nodes.Count(n => n.Depth >= 2));                         // budget 5 refinements, bad.1 dropped
        Assert.Equal("bad.2", tree2.Nodes.Single(n => n.Committed).Action);                // no pass: the best-valued response (ties: earliest)
        Assert.All(judge2.Judged.Where(r => r != "bad.1").GroupBy(r => r), g => Assert.Single(g));
    }

    [Fact]
    public async Task Dfs_goes_deep_first_and_a_passing_actor_sample_needs_no_refinement()
    {
        var judge = new ScriptedJudge(Votes(("bad", "NNN"), ("bad.1", "YNN"), ("bad.2", "NNN"), ("bad.1.1", "NNN"), ("bad.1.2", "NNN"),
            ("bad.1.1.1", "NNN"), ("bad.1.1.2", "NNN"), ("bad.1.2.1", "YYN"), ("bad.1.2.2", "NNN")));
        var refiner = new ScriptedRefiner("bad");
        var tree = await new SparSearch(Env, refiner, judge, new SparOptions(Branch: 2, SelectBranch: 2, MaxDepth: 3, Mode: SparMode.Dfs, JudgeSamples: 3, ActorSamples: 1))
            .SearchAsync("spar", Task0);
        Assert.Equal(new[] { "bad", "bad.1", "bad.1.1", "bad.1.2" }, refiner.Refined);
        Assert.Equal("bad.1.2.1", tree.Nodes.Single(n => n.Committed).Action);

        var fine = new ScriptedRefiner("good");
        var solved = await new SparSearch(Env, fine, new ScriptedJudge(Votes(("good", "YYY"))), new SparOptions(JudgeSamples: 3, ActorSamples: 1)).SearchAsync("spar", Task0);
        Assert.Empty(fine.Refined);
        Assert.Equal("good", solved.Nodes.Single(n => n.Committed).Action);
    }

    [Fact]
    public async Task Value_proportional_selection_is_seeded_and_keeps_select_branch_nodes()
    {
        var votes = Votes(("bad", "NNN"), ("bad.1", "YNN"), ("bad.2", "NNN"), ("bad.3", "YNN"), ("bad.4", "NNN"));
        foreach (var (suffix, v) in new[] { (".1", "NNN"), (".2", "NNN"), (".3", "NNN"), (".4", "NNN") })
            foreach (var p in new[] { "bad.1", "bad.2", "bad.3", "bad.4" }) votes[p + suffix] = [v];
        async Task<List<string>> Run(long seed)
        {
            var refiner = new ScriptedRefiner("bad");
            await new SparSearch(Env, refiner, new ScriptedJudge(votes), new SparOptions(Branch: 4, SelectBranch: 2, MaxDepth: 2, Selection: SparSelection.Sample,
                JudgeSamples: 3, ActorSamples: 1, Seed: seed)).SearchAsync("spar", Task0);
            return refiner.Refined;
        }
        var first = await Run(1);
        Assert.Equal(first, await Run(1));
        Assert.Equal(3, first.Count);
        // Only the valued refinements (bad.1, bad.3) can be drawn while their value is left.
        Assert.Equal(new[] { "bad.1", "bad.3" }, first.Skip(1).Order());
    }

    // ---- The policy as actor and refiner (EpisodeRefiner) on real environments, with toy expanders ----

    [Fact]
    public void Edit_points_keep_something_whenever_there_is_something_to_keep()
    {
        Assert.Equal([(0, 5), (0, 10), (0, 15)], EpisodeRefiner.EditPoints(["cats purr soft paws"]));
        Assert.Equal([(1, 0)], EpisodeRefiner.EditPoints(["a", "b"]));        // one-word steps: keep whole steps
        Assert.Equal([(1, 0), (1, 2), (1, 4), (1, 6)], EpisodeRefiner.EditPoints(["a", "5 * 4 ="]));
        Assert.Equal([(0, 0)], EpisodeRefiner.EditPoints(["word"]));          // nothing to keep: a fresh sample
        Assert.Equal([(0, 0)], EpisodeRefiner.EditPoints([]));
    }

    /// <summary>A toy policy for one-line answers: a fixed first answer, and for a state that ends inside a line, the next word of a script.</summary>
    sealed class WordPolicy(string first, Dictionary<string, string> continuations) : IStepProposer
    {
        public List<string> States { get; } = [];

        public Task<IReadOnlyList<IReadOnlyList<ProposedStep>>> ProposeAsync(IReadOnlyList<ProposalRequest> requests, CancellationToken cancellationToken = default)
        {
            States.AddRange(requests.Select(r => r.State));
            return Task.FromResult<IReadOnlyList<IReadOnlyList<ProposedStep>>>(requests.Select(r =>
            {
                var kept = r.State[(r.State.LastIndexOf('\n') + 1)..];
                var action = kept.Length == 0 ? first : continuations[kept];
                var tokens = (action + "\n").Select(ch => (int)ch).ToArray();
                return (IReadOnlyList<ProposedStep>)[new ProposedStep(action, tokens, tokens.Select(_ => -0.1f).ToArray())];
            }).ToArray());
        }
    }

    [Fact]
    public async Task A_one_step_refinement_edits_the_failing_response_and_spar_pairs_it_with_that_response()
    {
        // "At most 3 words": the policy's answer has 4; a refinement keeps its first words and the policy writes the rest.
        var env = new InstructionsEnvironment();
        var task = new EnvTask("c", "cats|max:3|lower");
        var policy = new WordPolicy("cats purr soft paws", new() { ["cats "] = "nap", ["cats purr "] = "soft", ["cats purr soft "] = "paws" });
        var search = new SparSearch(env, new EpisodeRefiner(env, policy, depthLimit: 1, temperature: 1), new VerifierJudge(env),
            new SparOptions(Branch: 3, SelectBranch: 1, MaxDepth: 2, JudgeSamples: 1, ActorSamples: 1, Seed: 7));
        var tree = await search.SearchAsync("spar", task);

        var original = tree.Nodes[1];
        Assert.Equal("cats purr soft paws\n", original.StepText);
        Assert.Equal(original.StepText.Select(ch => (int)ch), original.TokenIds);   // the policy's own tokens
        Assert.Equal(0.0, original.Value);
        var refinements = tree.Nodes.Where(n => n.Parent == original.Index).ToList();
        Assert.NotEmpty(refinements);
        Assert.All(policy.States.Skip(1), s => Assert.False(s.EndsWith('\n'), s));   // every refinement continues kept words: no fresh sample
        foreach (var r in refinements)
        {
            // Kept words (text, no tokens) then the policy's continuation with its tokens.
            Assert.Equal(2, r.Spans.Count);
            Assert.Equal(0, r.Spans[0].Tokens);
            var kept = r.StepText[..r.Spans[0].Characters];
            Assert.StartsWith(kept, original.StepText);
            Assert.True(kept.Length > 0 && kept.EndsWith(' '), kept);
            Assert.Equal(r.StepText[kept.Length..].Select(ch => (int)ch), r.TokenIds);
            Assert.Equal(r.TokenIds.Length, r.LogProbs.Length);
        }

        var pairs = Extractors.Get("spar").Extract(tree, new ExtractorOptions(), new Random(0));
        Assert.NotEmpty(pairs);
        foreach (var pair in pairs)
        {
            var (chosen, rejected) = (pair.Candidates[0], pair.Candidates[1]);
            Assert.Equal("Write about cats: at most 3 words, lowercase.\n", pair.Prompt);
            Assert.Equal(original.StepText, rejected.Text);                           // the response it refines, whole
            Assert.NotEqual(rejected.Text, chosen.Text);
            Assert.Equal(1.0, env.Verify(task, pair.Prompt + chosen.Text).Reward);    // the accepted refinement, whole
            Assert.Equal(chosen.Text, string.Concat(chosen.Steps.Select(s => s.Text)));
            Assert.True(chosen.Steps.Sum(s => s.TokenIds.Length) > 0 && rejected.Steps.Sum(s => s.TokenIds.Length) > 0);
        }
    }

    [Fact]
    public async Task A_refiner_shown_the_critique_reads_it_before_the_state_and_its_pairs_do_not()
    {
        var env = new InstructionsEnvironment();
        var task = new EnvTask("c", "cats|max:3|lower");
        var policy = new WordPolicy("cats purr soft paws", new() { ["cats "] = "nap", ["cats purr "] = "soft", ["cats purr soft "] = "paws" });
        var tree = await new SparSearch(env, new EpisodeRefiner(env, policy, depthLimit: 1, temperature: 1, showCritique: true), new VerifierJudge(env),
            new SparOptions(Branch: 3, SelectBranch: 1, MaxDepth: 2, JudgeSamples: 1, ActorSamples: 1, Seed: 7)).SearchAsync("spar", task);

        var original = tree.Nodes[1];
        Assert.False(string.IsNullOrEmpty(original.Critique));
        var initial = env.InitialState(task);
        Assert.Equal(initial, policy.States[0]);                                      // the actor's sample: no feedback
        var refining = policy.States.Skip(1).ToList();
        Assert.NotEmpty(refining);
        Assert.All(refining, s => Assert.StartsWith(EpisodeRefiner.Feedback(original.Critique!) + initial, s));
        foreach (var r in tree.Nodes.Where(n => n.Parent == original.Index))
        {
            Assert.DoesNotContain("Feedback", r.StepText);                            // the environment never read it
            Assert.NotEmpty(r.TokenIds);
            Assert.Empty(r.LogProbs);                                                 // they belong to the feedback prompt: re-scored
        }
        var pairs = Extractors.Get("spar").Extract(tree, new ExtractorOptions(), new Random(0));
        Assert.NotEmpty(pairs);
        Assert.All(pairs, p => Assert.Equal(initial, p.Prompt));
    }

    [Fact]
    public async Task A_multi_step_refinement_keeps_whole_steps_with_their_tokens_and_pairs_are_never_joined_ancestors()
    {
        // Two-letter toy game: "ab" fails, "ac" wins. The policy plays a, then b the first time and c afterwards.
        var env = new ToyTreeEnvironment(2, new Dictionary<string, double> { ["ac"] = 1 });
        var calls = 0;
        var policy = new ScriptedProposer(state => state.EndsWith("t\n", StringComparison.Ordinal)
            ? [new ProposedStep("a", [97], [-0.5f])]
            : [Interlocked.Increment(ref calls) == 1 ? new ProposedStep("b", [98], [-0.2f]) : new ProposedStep("c", [99], [-0.3f])]);
        var tree = await new SparSearch(env, new EpisodeRefiner(env, policy, depthLimit: 2, temperature: 1), new VerifierJudge(env),
            new SparOptions(Branch: 1, MaxDepth: 3, JudgeSamples: 1, ActorSamples: 1)).SearchAsync("spar", new EnvTask("toy", "t"));

        var (original, refined) = (tree.Nodes[1], tree.Nodes[2]);
        Assert.Equal(("a\nb\n", "a\nc\n"), (original.StepText, refined.StepText));
        Assert.Equal(original.Index, refined.Parent);
        Assert.Equal([new StepSpan(2, 1), new StepSpan(2, 1)], refined.Spans);
        Assert.Equal([97, 99], refined.TokenIds);                                    // the kept step keeps the policy's tokens
        Assert.Equal([-0.5f, -0.3f], refined.LogProbs);
        var pair = Assert.Single(Extractors.Get("spar").Extract(tree, new ExtractorOptions(), new Random(0)));
        Assert.Equal("Toy t\n", pair.Prompt);
        Assert.Equal(("a\nc\n", "a\nb\n"), (pair.Candidates[0].Text, pair.Candidates[1].Text));
        Assert.Equal([("a\n", 97), ("c\n", 99)], pair.Candidates[0].Steps.Select(s => (s.Text, s.TokenIds.Single())));
    }
}

using Akka.Actor;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Search;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;
using SelfPlay.Models.Heads;
using SelfPlay.Models.Llama;
using SelfPlay.Models.Tokenization;
using SelfPlay.Samples.Game24;

namespace SelfPlay.Actors.Tests;

/// <summary>The critic actor with a trained critic: the verifier until a critic is loaded, a critic whose sha256 does
/// not match refused, then the critic's scores for open nodes (batched over concurrent requests) and verified rewards for terminals.</summary>
public sealed class CriticActorTests : Akka.TestKit.Xunit2.TestKit
{
    static readonly EnvTask Task24 = new("4-5-6-10", "4 5 6 10");
    readonly string _dir = Path.Combine(Path.GetTempPath(), "selfplay-critic-actor-" + Guid.NewGuid().ToString("N"));

    /// <summary>The nodes along 5 * 4, 10 - 6, then a solving and a failing last step.</summary>
    static List<NodeToScore> Nodes(IEnvironment env)
    {
        var nodes = new List<NodeToScore>();
        var state = env.InitialState(Task24);
        foreach (var action in new[] { "5 * 4", "10 - 6" })
        {
            var outcome = env.Step(Task24, state, action);
            nodes.Add(new NodeToScore(state, state + outcome.Appended, outcome));
            state += outcome.Appended;
        }
        foreach (var action in new[] { "20 + 4", "20 - 4" })
        {
            var outcome = env.Step(Task24, state, action);
            Assert.True(outcome.IsTerminal);
            nodes.Add(new NodeToScore(state, state + outcome.Appended, outcome));
        }
        return nodes;
    }

    [Fact]
    public async Task Open_nodes_get_the_loaded_critics_scores_and_terminals_their_verified_reward()
    {
        var env = new Game24Environment();
        string sha;
        double[] expected;
        var nodes = Nodes(env);
        using (var critic = CriticModel.Create(new LlamaForCausalLM(new LlamaConfig(new CharTokenizer().VocabSize, 32, 64, 1, 2, 1), 3), new CharTokenizer(), "prm", 4))
        {
            sha = critic.Save(_dir, 1, "game24");
            expected = critic.Score(nodes.Take(2).Select(n => n.StateAfter).ToList());
        }
        var verifier = new VerifierEvaluator(env);
        var actor = Sys.ActorOf(Props.Create(() => new CriticActor(verifier, verifier, "cpu")));
        var request = new ScoreNodes(Task24.Id, Task24.Input, nodes);

        // No critic yet: the verifier scores (open nodes 0).
        Assert.Equal([0.0, 0.0, 1.0, 0.0], (await actor.Ask<NodesScored>(request, TimeSpan.FromSeconds(30))).Values);

        actor.Tell(new LoadCritic(1, _dir, new string('f', 64)), TestActor);
        var refused = ExpectMsg<CriticLoadFailed>(TimeSpan.FromSeconds(30));
        Assert.StartsWith("cannot load critic v1: ", refused.Reason);
        Assert.Contains("expected " + new string('f', 64), refused.Reason);

        actor.Tell(new LoadCritic(1, _dir, sha), TestActor);
        Assert.Equal(1, ExpectMsg<CriticLoaded>(TimeSpan.FromSeconds(30)).Version);

        // Concurrent requests (as from many searches) are answered together, each with its own nodes' scores.
        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => actor.Ask<NodesScored>(request, TimeSpan.FromSeconds(30))));
        Assert.All(answers, a =>
        {
            Assert.Equal(expected[0], a.Values[0], 5);
            Assert.Equal(expected[1], a.Values[1], 5);
            Assert.Equal([1.0, 0.0], a.Values.Skip(2));
            Assert.InRange(a.Values[0], 0, 1);
        });
        Assert.NotEqual(0, answers[0].Values[0]);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}

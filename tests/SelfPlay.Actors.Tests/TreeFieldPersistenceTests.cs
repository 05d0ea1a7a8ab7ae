using Akka.Actor;
using Akka.Configuration;
using SelfPlay.Actors.Protocol;
using SelfPlay.Core.Trees;

namespace SelfPlay.Actors.Tests;

/// <summary>The algorithm-specific node fields that extractors read (SPaR's spans, Tree-PLV's look-ahead rewards) survive the journal's serializer.</summary>
public sealed class TreeFieldPersistenceTests : IDisposable
{
    readonly ActorSystem _system = ActorSystem.Create("tree-fields", ConfigurationFactory.ParseString(SelfPlaySerializer.Hocon));

    [Fact]
    public void Spans_and_look_ahead_rewards_round_trip_with_the_stored_tree()
    {
        var tree = PreferenceTree.Create("c/1/t/0", "Write about cats: at most 3 words.\n");
        tree.AddChild(0, new TreeNode { Action = "cats nap", StepText = "cats nap\n", TokenIds = [110, 97, 112, 10], LogProbs = [-0.1f, -0.2f, -0.3f, -0.4f],
            Spans = [new StepSpan(5, 0), new StepSpan(4, 4)] });
        tree.AddChild(0, new TreeNode { Action = "a", StepText = "a\n", TokenIds = [97], LogProbs = [-0.5f], LookAheadRewards = [1, 0, 0.2] });
        var message = new TreeStored(tree);
        var serializer = (SelfPlaySerializer)_system.Serialization.FindSerializerFor(message);
        var back = (TreeStored)_system.Serialization.Deserialize(serializer.ToBinary(message), serializer.Identifier, serializer.Manifest(message));
        Assert.Equal([new StepSpan(5, 0), new StepSpan(4, 4)], back.Tree.Nodes[1].Spans);
        Assert.Equal([1, 0, 0.2], back.Tree.Nodes[2].LookAheadRewards);
        Assert.Empty(back.Tree.Nodes[2].Spans);
    }

    public void Dispose() => _system.Terminate().Wait();
}

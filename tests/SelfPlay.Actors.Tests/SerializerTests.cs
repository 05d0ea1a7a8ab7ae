using System.Text.Json;
using Akka.Actor;
using Akka.Configuration;
using SelfPlay.Actors.Protocol;
using SelfPlay.Core.Environments;
using SelfPlay.Core.Search;
using SelfPlay.Core.Trees;

namespace SelfPlay.Actors.Tests;

public sealed class SerializerTests : IDisposable
{
    readonly ActorSystem _system = ActorSystem.Create("serializer-test", ClosedSerialization.Config);

    static PreferenceTree SampleTree()
    {
        var tree = PreferenceTree.Create("c/1/t/0", "Input: 4 5 6 10\n");
        tree.AddChild(0, new TreeNode { Action = "5 * 4", StepText = "5 * 4 = 20 (left: 6 10 20)\n", TokenIds = [1, 2], LogProbs = [-0.1f, float.NegativeInfinity], CriticScores = { ["verifier"] = 1 } });
        return tree;
    }

    public static IEnumerable<object[]> Messages() => new object[]
    {
        new StoreTree(SampleTree()), new TreeStored(SampleTree()), new StoreTreeAck("c/1/t/0", 2), new GetTree("c/1/t/0"), new OpenBucket("c/1/7"), new BucketOpen("c/1/7", 3),
        new TreeReply("c/1/t/0", SampleTree()), new TreeReply("x", null), new TreeBucketSnapshot([SampleTree(), SampleTree()]), new TreesStored([SampleTree(), SampleTree()]),
        new TreeBucketSnapshot([]), RequestWork.Instance,
        new SearchTask("t", "c/1/t/0", 1, "4 5 6 10", 7, 1, 99), new TaskCompleted("t", "c/1/t/0", 7, 12, true, 1.5),
        new TaskFailed("t", 7, "boom"), new LoadPolicy(1, "/ckpt/v1", "abc"), new PolicyLoaded(1), new PolicyLoadFailed(1, "sha256 mismatch"),
        new ProposeSteps([new ProposalRequest("Input: 1 2 3 4\n", 4, 1.0, 5)]),
        new StepsProposed([[new ProposedStep("1 + 2", [3, 4], [-0.5f, -0.25f])]]),
        new ScoreNodes("t", "1 2 3 4", [new NodeToScore("a", "ab", StepOutcome.End("b\n", 1, "solved")),
            new NodeToScore("a", "ac", StepOutcome.Continue("c\n") with { StepScore = 0.8 })]),
        new NodesScored([0.0, 1.0]),
        new ApplySteps("t", "1 2 3 4", [new EnvStep("Input: 1 2 3 4\n", "1 + 2"), new EnvStep("", "")]),
        new StepsApplied([StepOutcome.Continue("1 + 2 = 3 (left: 3 3 4)\n") with { StepScore = 1 }, StepOutcome.End("x\n", 0, "environment error: step timed out after 10 s")]),
        RunWarmup.Instance, new TrainIteration(2),
        new PolicyPublished(2, "/ckpt/v2", "def", new TrainingReport(10, 10, 0.69, 0.5, 0.8, 3.5)),
        new PolicyPublished(2, "/ckpt/v2", "def", new TrainingReport(10, 10, 0.69, 0.5, 0.8, 3.5),
            new CriticReport(2, "prm", "/ckpt/critic-v2", "0a1b", 300, 30, 0.69, 0.4, 0.7, 0.45, 0.6, 2.5)),
        new GetInitialState("t", "1 2 3 4"), new InitialStateReply("Input: 1 2 3 4\n"), new InitialStateReply(null, "no board"),
        new VerifyStates("t", "1 2 3 4", ["Input: 1 2 3 4\nAnswer: x\n"]), new StatesVerified([new VerifiedState(1, "solved"), new VerifiedState(0, "wrong")]),
        new LoadCritic(2, "/ckpt/critic-v2", "0a1b"), new CriticLoaded(2), new CriticLoadFailed(2, "no such folder"), new TrainingFailed("disk full", Permanent: true), RegisterCritic.Instance,
        new CampaignProgress("search", 1, 3, 10), new CampaignFinished("completed", null),
        WaitForCompletion.Instance,
        new IterationStarted(2, 1, 16), new TaskRecorded(2, "1-2-3-4", 17, true, false),
        new CampaignStarted(new DateTime(2026, 12, 4, 22, 0, 0, DateTimeKind.Utc)),
        new IterationStarted(2, 1, 16, new DateTime(2026, 12, 4, 22, 0, 0, DateTimeKind.Utc)),
        new TaskRecorded(2, "1-2-3-4", 17, true, false, new DateTime(2026, 12, 4, 22, 0, 1, DateTimeKind.Utc)),
        new TaskLeased(2, "1-2-3-4", 9, "akka.tcp://selfplay@127.0.0.1:4053/user/search-0#123"), StartCampaign.Instance,
        RegisterInference.Instance, WatchProgress.Instance, GetInferenceStats.Instance, new InferenceStats(3, 40, 128, 900, 1.5),
        new IterationEvaluated(new SelfPlay.Actors.Campaign.IterationSummary(1, "selfplay", 1, 16, 40, new(3, 40, 0.075), 12.5, 5, 4, 3.5,
            300, 3, 0, 0.69, 0.6, 0.7)),
    }.Select(m => new[] { m });

    [Theory]
    [MemberData(nameof(Messages))]
    public void Every_message_round_trips_through_the_bound_serializer(object message)
    {
        var serializer = _system.Serialization.FindSerializerFor(message);
        Assert.IsType<SelfPlaySerializer>(serializer);
        var manifest = ((SelfPlaySerializer)serializer).Manifest(message);
        Assert.Matches(@"^[a-z-]+\.v\d+$", manifest);
        var back = _system.Serialization.Deserialize(serializer.ToBinary(message), serializer.Identifier, manifest);
        Assert.Equal(message.GetType(), back.GetType());
        Assert.Equal(JsonSerializer.Serialize(message, message.GetType(), Options), JsonSerializer.Serialize(back, back.GetType(), Options));
    }

    [Fact]
    public void Every_protocol_type_has_a_manifest_and_a_round_trip_case()
    {
        var protocol = typeof(ISelfPlayMessage).Assembly.GetTypes()
            .Where(t => typeof(ISelfPlayMessage).IsAssignableFrom(t) && t is { IsInterface: false, IsNested: false }).ToHashSet();
        Assert.Equal(protocol.OrderBy(t => t.Name), SelfPlaySerializer.KnownTypes.OrderBy(t => t.Name));
        Assert.Equal(protocol.OrderBy(t => t.Name), Messages().Select(m => m[0].GetType()).Distinct().OrderBy(t => t.Name));
    }

    [Fact]
    public void An_unknown_manifest_is_a_clear_error()
    {
        var serializer = new SelfPlaySerializer((ExtendedActorSystem)_system);
        Assert.Contains("unknown manifest", Assert.ThrowsAny<Exception>(() => serializer.FromBinary([], "nope.v9")).Message);
    }

    static readonly JsonSerializerOptions Options = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public void Dispose() => _system.Terminate().Wait();
}

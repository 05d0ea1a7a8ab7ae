using SelfPlay.Core.Environments;

namespace SelfPlay.Core.Tests.Environments;

/// <summary>Hostile policy output every environment must survive: reward 0 with a one-line reason, never an exception.</summary>
public static class Hostile
{
    public static readonly string[] Actions =
    [
        "", " ", "\n", "\n\n\n", new string('9', 100_000), new string('x', 5000) + "\n" + new string('y', 5000),
        "\0\u0001\u0002", "ünïcödé ☃ 𝄞", "[[[[]]]]", "]", "click[", "search[]", "{\"a\":", "null", "-1", "NaN",
        "1e309", "99999999999999999999999", "' OR 1=1 --", "<script>alert(1)</script>", "\r\n\r\n",
    ];

    /// <summary>Each action from the task's initial state ends the episode with reward 0 and a one-line reason.</summary>
    public static void AssertRejected(IEnvironment env, EnvTask task, IEnumerable<string>? actions = null, string? state = null)
    {
        state ??= env.InitialState(task);
        foreach (var action in actions ?? Actions)
        {
            var outcome = env.Step(task, state, action);
            var label = action.Length > 30 ? action[..30] : action;
            Assert.True(outcome.IsTerminal, $"'{label}' did not end the episode: {outcome.Appended}");
            Assert.True(outcome.Reward == 0, $"'{label}' earned {outcome.Reward}");
            Assert.False(string.IsNullOrWhiteSpace(outcome.Reason), $"'{label}' has no reason");
            Assert.DoesNotContain('\n', outcome.Reason);
            Assert.EndsWith("\n", outcome.Appended);
            Assert.True(outcome.Appended.Length < 400, $"'{label}' appended {outcome.Appended.Length} characters");
            Assert.Equal(0, env.Verify(task, state + outcome.Appended).Reward);
        }
    }

    /// <summary>Verify never throws and never rewards garbage states.</summary>
    public static void AssertVerifyRejects(IEnvironment env, EnvTask task)
    {
        foreach (var state in Actions.Append(env.InitialState(task)).Append(env.InitialState(task) + "Answer: 1\n"))
        {
            var (reward, reason) = env.Verify(task, state);
            Assert.Equal(0, reward);
            Assert.False(string.IsNullOrWhiteSpace(reason));
        }
    }

    /// <summary>Every reference solution of the tasks plays through the environment to reward 1, and verifies.</summary>
    public static void AssertReferenceSolutionsSolve(IEnvironment env, IEnumerable<EnvTask> tasks, int seed = 1)
    {
        var random = new Random(seed);
        foreach (var task in tasks)
        {
            var actions = env.ReferenceActions(task, random);
            Assert.NotNull(actions);
            var steps = EpisodeRunner.Play(env, task, actions!);
            var last = steps[^1].Outcome;
            Assert.True(last.IsTerminal && last.Reward == 1, $"{task.Input}: {last.Reason}");
            var final = steps[^1].StateBefore + last.Appended;
            Assert.Equal(1.0, env.Verify(task, final).Reward);
        }
    }
}

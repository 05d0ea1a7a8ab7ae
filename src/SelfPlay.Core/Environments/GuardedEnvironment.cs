using System.Collections.Concurrent;

namespace SelfPlay.Core.Environments;

/// <summary>An environment call that threw, timed out or broke the contract; its message is one line.</summary>
public sealed class EnvironmentFailure(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Crash containment for environment code (third-party plug-ins included). Every call runs with a time-out on
/// dedicated threads; a step that throws, hangs or returns an outcome outside the contract becomes a terminal step
/// with reward 0 and a one-line reason, a failing verifier scores 0, a failing reference solution is skipped.
/// Only <see cref="InitialState"/> throws (an <see cref="EnvironmentFailure"/>): without a state the task itself fails,
/// and the campaign reports it and goes on. A time-out cannot stop the hung call; its thread is abandoned and replaced.
/// </summary>
/// <param name="timeout">per call; zero or negative runs calls inline, with exception containment only.</param>
public sealed class GuardedEnvironment(IEnvironment inner, TimeSpan timeout) : IEnvironment
{
    const int ShownActionLength = 64;

    public IEnvironment Inner { get; } = inner ?? throw new ArgumentNullException(nameof(inner));
    public TimeSpan Timeout { get; } = timeout;

    public string Name => Inner.Name;
    public string StepStop => Inner.StepStop;

    public string InitialState(EnvTask task)
    {
        string? state;
        try { state = Run(() => Inner.InitialState(task), "initial state"); }
        catch (EnvironmentFailure) { throw; }
        catch (Exception e) { throw new EnvironmentFailure($"{Name}: initial state of task {task?.Id}: {Describe(e)}", e); }
        return state ?? throw new EnvironmentFailure($"{Name}: initial state of task {task?.Id} is null");
    }

    public StepOutcome Step(EnvTask task, string state, string action)
    {
        try
        {
            var outcome = Run(() => Inner.Step(task, state, action), "step");
            if (outcome is null) return Failed(action, "environment error: the step returned no outcome");
            if (outcome.Appended is null) return Failed(action, "environment error: the step appended no text");
            if (outcome.IsTerminal && !(outcome.Reward is >= 0 and <= 1))
                return Failed(action, $"environment error: reward {outcome.Reward} is outside [0, 1]");
            return outcome.Reason.Contains('\n') || outcome.Reason.Contains('\r') ? outcome with { Reason = OneLine(outcome.Reason) } : outcome;
        }
        catch (Exception e) { return Failed(action, "environment error: " + Describe(e)); }
    }

    public (double Reward, string Reason) Verify(EnvTask task, string finalState)
    {
        try
        {
            var (reward, reason) = Run(() => Inner.Verify(task, finalState), "verify");
            return reward is >= 0 and <= 1 ? (reward, OneLine(reason ?? "")) : (0, $"verifier error: reward {reward} is outside [0, 1]");
        }
        catch (Exception e) { return (0, "verifier error: " + Describe(e)); }
    }

    public IReadOnlyList<string>? ReferenceActions(EnvTask task, Random random)
    {
        try { return Run(() => Inner.ReferenceActions(task, random), "reference solution"); }
        catch (Exception) { return null; } // no warm-up trace for this task; the rest of the warm-up goes on
    }

    public IReadOnlyList<string>? LegalActions(EnvTask task, string state)
    {
        try { return Run(() => Inner.LegalActions(task, state), "legal actions"); }
        catch (Exception) { return null; }
    }

    public double? ScoreStep(EnvTask task, string stateBefore, string action, StepOutcome outcome)
    {
        try
        {
            var score = Run(() => Inner.ScoreStep(task, stateBefore, action, outcome), "step score");
            return score is null or (>= 0 and <= 1) ? score : null;
        }
        catch (Exception) { return null; }
    }

    T Run<T>(Func<T> call, string what) =>
        Timeout > TimeSpan.Zero ? EnvironmentThreads.Shared.Run(call, Timeout, $"{what} timed out after {Timeout.TotalSeconds:0.###} s") : call();

    static StepOutcome Failed(string? action, string reason)
    {
        var shown = OneLine(action ?? "");
        if (shown.Length > ShownActionLength) shown = shown[..ShownActionLength];
        return StepOutcome.End(shown + "\n", 0, OneLine(reason));
    }

    static string Describe(Exception e) => e is EnvironmentFailure ? OneLine(e.Message) : $"{e.GetType().Name}: {OneLine(e.Message)}";

    static string OneLine(string text) => text.ReplaceLineEndings(" ");
}

/// <summary>
/// Dedicated threads for environment calls, so a blocked caller never waits on the thread pool it blocks, and a
/// hung call costs one thread, which is replaced.
/// </summary>
sealed class EnvironmentThreads
{
    public static readonly EnvironmentThreads Shared = new(Math.Max(4, 2 * Environment.ProcessorCount));

    readonly BlockingCollection<Action> _work = new();

    EnvironmentThreads(int threads)
    {
        for (var i = 0; i < threads; i++) StartThread();
    }

    void StartThread() => new Thread(() => { foreach (var item in _work.GetConsumingEnumerable()) item(); })
    { IsBackground = true, Name = "selfplay-environment" }.Start();

    public T Run<T>(Func<T> call, TimeSpan timeout, string timeoutMessage)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _work.Add(() =>
        {
            try { done.SetResult(call()); }
            catch (Exception e) { done.SetException(e); }
        });
        bool finished;
        try { finished = done.Task.Wait(timeout); }
        catch (AggregateException) { finished = true; } // the call threw: rethrown unwrapped below
        if (!finished)
        {
            StartThread(); // the thread running the hung call is lost to the pool
            throw new EnvironmentFailure(timeoutMessage);
        }
        return done.Task.GetAwaiter().GetResult();
    }
}

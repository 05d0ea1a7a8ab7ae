using Akka.Actor;
using Akka.Event;
using SelfPlay.Actors.Protocol;
using SelfPlay.Core.Environments;

namespace SelfPlay.Actors.Environments;

/// <summary>
/// Runs environment code for the searches: each batch of steps runs off the actor's thread (a task piped back), so
/// the mailbox keeps taking batches while one runs or hangs. Containment is the environment's own guard (the
/// campaign's environment is a <see cref="GuardedEnvironment"/>: a step that throws or times out is a terminal outcome
/// with reward 0 and a one-line reason); this actor only logs those and replies, so no environment failure reaches it.
/// </summary>
public sealed class EnvironmentActor : ReceiveActor
{
    sealed record Applied(IActorRef ReplyTo, ApplySteps Request, IReadOnlyList<StepOutcome>? Outcomes, Exception? Error);

    /// <summary>How <see cref="GuardedEnvironment"/> and <see cref="InlineEnvironmentSteps"/> begin the reason of a step that threw or timed out.</summary>
    const string FailurePrefix = "environment error";

    readonly ILoggingAdapter _log = Context.GetLogger();

    /// <param name="scoreSteps">attach the environment's step score to each open outcome (search.critic = environment)</param>
    public EnvironmentActor(IEnvironment environment, bool scoreSteps = false)
    {
        var steps = new InlineEnvironmentSteps(environment, scoreSteps);
        Receive<ApplySteps>(request =>
        {
            if (MessageLimits.Refused(request, Sender, _log)) return;
            var replyTo = Sender;
            Task.Run(() => steps.StepAsync(new EnvTask(request.TaskId, request.TaskInput), request.Steps)).ContinueWith(t => t.IsCompletedSuccessfully
                    ? new Applied(replyTo, request, t.Result, null)
                    : new Applied(replyTo, request, null, t.Exception?.GetBaseException() ?? new InvalidOperationException("environment batch cancelled")))
                .PipeTo(Self);
        });
        // Initial states and verification run off the actor's thread too, answered straight to the asker.
        Receive<GetInitialState>(request => Task.Run(() => steps.InitialStateAsync(new EnvTask(request.TaskId, request.TaskInput)))
            .ContinueWith(t => t.IsCompletedSuccessfully ? new InitialStateReply(t.Result)
                : new InitialStateReply(null, t.Exception!.GetBaseException().Message.ReplaceLineEndings(" ")))
            .PipeTo(Sender));
        Receive<VerifyStates>(request =>
        {
            if (MessageLimits.Refused(request, Sender, _log)) return;
            var replyTo = Sender;
            Task.Run(() => steps.VerifyAsync(new EnvTask(request.TaskId, request.TaskInput), request.FinalStates))
                .ContinueWith(t => t.IsCompletedSuccessfully ? (object)new StatesVerified(t.Result) : new Status.Failure(t.Exception!.GetBaseException()))
                .PipeTo(replyTo);
        });
        Receive<Applied>(applied =>
        {
            if (applied.Outcomes is { } outcomes)
            {
                foreach (var outcome in outcomes.Where(o => o.Reason.StartsWith(FailurePrefix, StringComparison.Ordinal)))
                    _log.Warning("environment {Environment}: task {TaskId}: {Reason}", environment.Name, applied.Request.TaskId, outcome.Reason);
                applied.ReplyTo.Tell(new StepsApplied(outcomes));
            }
            else
            {
                _log.Warning("environment {Environment}: task {TaskId}: batch of {Steps} steps failed: {Error}", environment.Name, applied.Request.TaskId,
                    applied.Request.Steps.Count, applied.Error!.Message.ReplaceLineEndings(" "));
                applied.ReplyTo.Tell(new Status.Failure(applied.Error));
            }
        });
    }
}

/// <summary>
/// The environment calls of searches, critics, judges and evaluations (steps, initial states, verification), answered
/// by environment actors (a router over them, local or on the cluster's environment nodes). An answer that does not come within <paramref name="timeout"/> (no environment node, a node lost, a step
/// hung past the guard) throws: the search, and with it its task, fails and is reported; the campaign goes on. A
/// failed step inside an answered batch is already a reward-0 outcome and ends only its branch.
/// </summary>
public sealed class ActorEnvironmentSteps(IActorRef environments, TimeSpan timeout) : IEnvironmentSteps
{
    public async Task<IReadOnlyList<StepOutcome>> StepAsync(EnvTask task, IReadOnlyList<EnvStep> steps, CancellationToken cancellationToken = default)
    {
        if (steps.Count == 0) return [];
        var reply = await AskAsync<StepsApplied>(new ApplySteps(task.Id, task.Input, steps), $"{steps.Count} step(s) of task {task.Id}", cancellationToken);
        if (reply.Outcomes.Count != steps.Count)
            throw new EnvironmentFailure($"environment actor answered {reply.Outcomes.Count} outcomes for {steps.Count} steps of task {task.Id}");
        return reply.Outcomes;
    }

    public async Task<string> InitialStateAsync(EnvTask task, CancellationToken cancellationToken = default)
    {
        var reply = await AskAsync<InitialStateReply>(new GetInitialState(task.Id, task.Input), $"the initial state of task {task.Id}", cancellationToken);
        return reply.State ?? throw new EnvironmentFailure(reply.Error ?? $"no initial state for task {task.Id}");
    }

    public async Task<IReadOnlyList<VerifiedState>> VerifyAsync(EnvTask task, IReadOnlyList<string> finalStates, CancellationToken cancellationToken = default)
    {
        if (finalStates.Count == 0) return [];
        var reply = await AskAsync<StatesVerified>(new VerifyStates(task.Id, task.Input, finalStates), $"{finalStates.Count} verification(s) of task {task.Id}",
            cancellationToken);
        return reply.Results.Count == finalStates.Count ? reply.Results
            : throw new EnvironmentFailure($"environment actor answered {reply.Results.Count} verifications for {finalStates.Count} states of task {task.Id}");
    }

    async Task<T> AskAsync<T>(object request, string what, CancellationToken cancellationToken)
    {
        try { return await environments.Ask<T>(request, timeout, cancellationToken); }
        catch (AskTimeoutException) { throw new EnvironmentFailure($"no environment actor answered {what} within {timeout.TotalSeconds:0.###} s"); }
        catch (Exception e) when (e is not EnvironmentFailure and not OperationCanceledException)
        {
            throw new EnvironmentFailure($"{what}: {e.Message.ReplaceLineEndings(" ")}", e);
        }
    }
}

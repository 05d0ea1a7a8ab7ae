using SelfPlay.Core.Environments;

namespace SelfPlay.Actors.Protocol;

// Environment actors: a batch of steps of one task, answered with one outcome per step, in order.
public sealed record ApplySteps(string TaskId, string TaskInput, IReadOnlyList<EnvStep> Steps) : ISelfPlayMessage;
public sealed record StepsApplied(IReadOnlyList<StepOutcome> Outcomes) : ISelfPlayMessage;
// A task's initial state: the state, or the one-line error of an environment that cannot start the task (as text:
// exceptions do not cross the network reliably).
public sealed record GetInitialState(string TaskId, string TaskInput) : ISelfPlayMessage;
public sealed record InitialStateReply(string? State, string? Error = null) : ISelfPlayMessage;
// Final states of one task re-verified from their text, answered in order.
public sealed record VerifyStates(string TaskId, string TaskInput, IReadOnlyList<string> FinalStates) : ISelfPlayMessage;
public sealed record StatesVerified(IReadOnlyList<VerifiedState> Results) : ISelfPlayMessage;

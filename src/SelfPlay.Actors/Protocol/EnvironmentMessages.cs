using SelfPlay.Core.Environments;

namespace SelfPlay.Actors.Protocol;

// Environment actors: a batch of steps of one task, answered with one outcome per step, in order.
public sealed record ApplySteps(string TaskId, string TaskInput, IReadOnlyList<EnvStep> Steps) : ISelfPlayMessage;
public sealed record StepsApplied(IReadOnlyList<StepOutcome> Outcomes) : ISelfPlayMessage;

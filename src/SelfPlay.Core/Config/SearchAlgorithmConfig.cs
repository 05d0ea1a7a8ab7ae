namespace SelfPlay.Core.Config;

// Per-algorithm settings of `search` (hocon/reference.conf documents each); SearchAlgorithms maps them to options.

public sealed record MctsConfig(string Selection = "puct", string Value = "critic", double AgentQAlpha = 0.5, int RootExpansions = 0,
    int BreadthLimit = 0, int RootSimulationFactor = 1, bool CommitAndReuse = false, int ParallelSimulations = 1, double VirtualLoss = 1.0);

public sealed record BestFirstConfig(int LookAhead = 8, int MaxExpansions = 8);

public sealed record BeamConfig(int Width = 2);

public sealed record DfsdtConfig(int MaxExpansions = 16);

public sealed record SparConfig(string Mode = "bfs", int Branch = 3, int SelectBranch = 2, int MaxDepth = 3, double EndGate = 0.5,
    int Budget = 1000, string Selection = "greedy", int JudgeSamples = 5, int JudgeResamples = 3, int ActorSamples = 4, string Judge = "verifier",
    string RefinerFeedback = "none");

public sealed record TreeRolloutConfig(int BranchFactor = 2, string BranchDepths = "0,1", int BranchEvery = 0, int MaxWidth = 16);

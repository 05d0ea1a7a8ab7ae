using SelfPlay.Core.Environments;
using SelfPlay.Core.Trees;

namespace SelfPlay.Core.Search;

/// <summary>One tree search for one task; every algorithm produces the one <see cref="PreferenceTree"/> model.</summary>
public interface ITreeSearch
{
    /// <summary>The name written into <see cref="PreferenceTree.Algorithm"/> (the search.algorithm setting).</summary>
    string Algorithm { get; }

    Task<PreferenceTree> SearchAsync(string treeId, EnvTask task, CancellationToken cancellationToken = default);
}

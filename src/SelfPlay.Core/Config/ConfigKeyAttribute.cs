namespace SelfPlay.Core.Config;

/// <summary>
/// The HOCON key of a config record's parameter where it is not the convention (its name in kebab case under its
/// record's section: <c>HiddenSize</c> of <c>Model</c> is <c>model.hidden-size</c>): a sub-section
/// (<c>lora.rank</c>), a shorter word (<c>dtype</c>) or, with <see cref="FromRoot"/>, a section of its own.
/// </summary>
[AttributeUsage(AttributeTargets.Parameter)]
public sealed class ConfigKeyAttribute(string key) : Attribute
{
    public string Key { get; } = key;

    /// <summary>The key is under <c>selfplay</c> itself, not under the record's section.</summary>
    public bool FromRoot { get; init; }
}

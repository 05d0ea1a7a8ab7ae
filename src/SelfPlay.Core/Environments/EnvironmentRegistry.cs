using SelfPlay.Core.Config;

namespace SelfPlay.Core.Environments;

/// <summary>An environment with its task split, ready for a campaign.</summary>
public sealed record EnvironmentSetup(IEnvironment Environment, IReadOnlyList<EnvTask> Train, IReadOnlyList<EnvTask> HeldOut);

/// <summary>Creates an environment and its tasks from the campaign's environment settings.</summary>
public interface IEnvironmentProvider
{
    string Name { get; }
    EnvironmentSetup Create(EnvironmentConfig config);
}

/// <summary>Environments known to this process, by name (environment.type).</summary>
public sealed class EnvironmentRegistry
{
    readonly Dictionary<string, IEnvironmentProvider> _providers = new(StringComparer.OrdinalIgnoreCase);

    public EnvironmentRegistry Register(IEnvironmentProvider provider)
    {
        _providers[provider.Name] = provider;
        return this;
    }

    public IReadOnlyCollection<string> Names => _providers.Keys;

    public EnvironmentSetup Create(EnvironmentConfig config) =>
        _providers.TryGetValue(config.Type, out var provider)
            ? provider.Create(config)
            : throw new ArgumentException($"unknown environment '{config.Type}' (known: {string.Join(", ", _providers.Keys.Order())})");
}

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

/// <summary>
/// Environments known to this process. environment.type is either a registered name ("game24"), the name of a
/// provider found in the plug-in folder (environment.plugin-folder), or an assembly-qualified provider type
/// ("Namespace.Type, Assembly") loaded by reflection.
/// </summary>
public sealed class EnvironmentRegistry
{
    readonly Dictionary<string, IEnvironmentProvider> _providers = new(StringComparer.OrdinalIgnoreCase);

    public EnvironmentRegistry Register(IEnvironmentProvider provider)
    {
        _providers[provider.Name] = provider;
        return this;
    }

    public IReadOnlyCollection<string> Names => _providers.Keys;

    /// <summary>
    /// The provider's environment and split. The environment comes wrapped in a <see cref="GuardedEnvironment"/>
    /// (environment.step-timeout-seconds), so a throwing or hanging environment fails a step or a task, never a campaign.
    /// </summary>
    public EnvironmentSetup Create(EnvironmentConfig config)
    {
        var setup = Provider(config).Create(config);
        return setup with { Environment = new GuardedEnvironment(setup.Environment, TimeSpan.FromSeconds(config.StepTimeoutSeconds)) };
    }

    /// <summary>Finds the provider that environment.type names; every failure is one line naming what is missing.</summary>
    public IEnvironmentProvider Provider(EnvironmentConfig config)
    {
        var folder = config.PluginFolder;
        if (folder.Length > 0 && !Directory.Exists(folder)) throw new ArgumentException($"environment.plugin-folder not found: {folder}");
        // A built-in name never loads the plug-in folder: no plug-in code runs for an environment that needs none.
        if (_providers.TryGetValue(config.Type, out var builtIn)) return builtIn;
        if (folder.Length > 0)
            foreach (var provider in PluginLoader.ProvidersIn(folder))
                _providers.TryAdd(provider.Name, provider);
        if (_providers.TryGetValue(config.Type, out var known)) return known;
        if (config.Type.Contains(',')) return PluginLoader.CreateProvider(config.Type, folder);
        var where = folder.Length > 0 ? $" (built in or in plug-in folder {folder})" : "";
        throw new ArgumentException($"unknown environment '{config.Type}' (known: {string.Join(", ", _providers.Keys.Order())}){where}; " +
                                    "a plug-in is named \"Namespace.Type, Assembly\"");
    }
}

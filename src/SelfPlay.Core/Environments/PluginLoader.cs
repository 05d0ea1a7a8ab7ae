using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.Loader;

namespace SelfPlay.Core.Environments;

/// <summary>
/// Loads environment providers from assemblies: by assembly-qualified type name, or every provider in a plug-in
/// folder. Plug-in assemblies go into the default load context (so they share this process's SelfPlay.Core);
/// their own dependencies are resolved from the same folder.
/// </summary>
public static class PluginLoader
{
    static readonly ConcurrentDictionary<string, byte> ResolvingFolders = new();

    /// <summary>Whether this process has loaded assemblies from the folder (as a plug-in folder or by type name).</summary>
    public static bool HasLoadedFrom(string folder) => ResolvingFolders.ContainsKey(Path.GetFullPath(folder));

    /// <summary>Every concrete <see cref="IEnvironmentProvider"/> with a public parameterless constructor in the folder's assemblies.</summary>
    public static IReadOnlyList<IEnvironmentProvider> ProvidersIn(string folder)
    {
        if (!Directory.Exists(folder)) throw new ArgumentException($"environment.plugin-folder not found: {folder}");
        var providers = new List<IEnvironmentProvider>();
        foreach (var assembly in LoadFolder(folder))
            foreach (var type in ExportedTypes(assembly))
                if (type is { IsClass: true, IsAbstract: false } && typeof(IEnvironmentProvider).IsAssignableFrom(type)
                    && type.GetConstructor(Type.EmptyTypes) is not null)
                    providers.Add(Instantiate(type, type.FullName!));
        return providers;
    }

    /// <summary>"Namespace.Type, Assembly": the assembly is found among the loaded ones, next to the program, or in the plug-in folder.</summary>
    public static IEnvironmentProvider CreateProvider(string qualifiedName, string pluginFolder)
    {
        var comma = qualifiedName.IndexOf(',');
        var typeName = qualifiedName[..comma].Trim();
        var assemblyName = qualifiedName[(comma + 1)..].Trim();
        if (typeName.Length == 0 || assemblyName.Length == 0)
            throw new ArgumentException($"environment.type '{qualifiedName}' must be \"Namespace.Type, Assembly\"");
        // The assembly name becomes a file name in the plug-in folder: a simple name only, never a path.
        if (!System.Text.RegularExpressions.Regex.IsMatch(assemblyName, "^[A-Za-z0-9_][A-Za-z0-9_.-]*$") || assemblyName.Contains("..", StringComparison.Ordinal))
            throw new ArgumentException($"environment.type '{qualifiedName}': '{assemblyName}' is not a simple assembly name (letters, digits, '.', '-', '_'; no path)");
        var assembly = FindAssembly(assemblyName, pluginFolder)
            ?? throw new ArgumentException($"environment.type '{qualifiedName}': assembly '{assemblyName}' not found " +
                                           $"(looked among the loaded assemblies, in {AppContext.BaseDirectory}" +
                                           (pluginFolder.Length > 0 ? $" and in {pluginFolder})" : "; set environment.plugin-folder to its folder)"));
        var type = assembly.GetType(typeName, throwOnError: false)
            ?? throw new ArgumentException($"environment.type '{qualifiedName}': type '{typeName}' not found in assembly '{assemblyName}'");
        if (!typeof(IEnvironmentProvider).IsAssignableFrom(type))
            throw new ArgumentException($"environment.type '{qualifiedName}': {typeName} does not implement {typeof(IEnvironmentProvider).FullName}");
        if (type.IsAbstract || type.GetConstructor(Type.EmptyTypes) is null)
            throw new ArgumentException($"environment.type '{qualifiedName}': {typeName} needs a public parameterless constructor");
        return Instantiate(type, qualifiedName);
    }

    static IEnvironmentProvider Instantiate(Type type, string name)
    {
        try { return (IEnvironmentProvider)Activator.CreateInstance(type)!; }
        catch (TargetInvocationException e)
        {
            throw new ArgumentException($"environment '{name}': its constructor failed: {e.InnerException?.Message.ReplaceLineEndings(" ")}");
        }
    }

    static Assembly? FindAssembly(string name, string pluginFolder)
    {
        var loaded = AppDomain.CurrentDomain.GetAssemblies().FirstOrDefault(a => string.Equals(a.GetName().Name, name, StringComparison.OrdinalIgnoreCase));
        if (loaded is not null) return loaded;
        try { return Assembly.Load(new AssemblyName(name)); }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException) { }
        foreach (var folder in new[] { pluginFolder, AppContext.BaseDirectory })
        {
            if (folder.Length == 0) continue;
            var path = Path.Combine(folder, name + ".dll");
            if (!File.Exists(path)) continue;
            WatchFolder(folder);
            return Load(path) ?? throw new ArgumentException($"{path} is not a .NET assembly");
        }
        return null;
    }

    static IEnumerable<Assembly> LoadFolder(string folder)
    {
        WatchFolder(folder);
        var loaded = AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetName().Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var path in Directory.GetFiles(folder, "*.dll").Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileNameWithoutExtension(path);
            // An assembly this process already has (SelfPlay.Core copied next to a plug-in) is used, never loaded twice.
            var assembly = loaded.Contains(name)
                ? AppDomain.CurrentDomain.GetAssemblies().First(a => string.Equals(a.GetName().Name, name, StringComparison.OrdinalIgnoreCase))
                : Load(path);
            if (assembly is not null) yield return assembly;
        }
    }

    /// <summary>Null for a file that is not a .NET assembly (a native library in the folder).</summary>
    static Assembly? Load(string path)
    {
        try { return AssemblyLoadContext.Default.LoadFromAssemblyPath(Path.GetFullPath(path)); }
        catch (BadImageFormatException) { return null; }
        catch (FileLoadException e) { throw new ArgumentException($"cannot load plug-in {path}: {e.Message.ReplaceLineEndings(" ")}"); }
    }

    static IEnumerable<Type> ExportedTypes(Assembly assembly)
    {
        try { return assembly.GetExportedTypes(); }
        catch (Exception e) when (e is ReflectionTypeLoadException or FileNotFoundException or FileLoadException)
        {
            throw new ArgumentException($"plug-in {assembly.GetName().Name}: a type cannot be loaded ({e.Message.ReplaceLineEndings(" ")}); " +
                                        "copy its dependencies into the plug-in folder");
        }
    }

    /// <summary>A plug-in's own dependencies are looked up in its folder.</summary>
    static void WatchFolder(string folder)
    {
        var full = Path.GetFullPath(folder);
        if (!ResolvingFolders.TryAdd(full, 0)) return;
        AssemblyLoadContext.Default.Resolving += (context, name) =>
        {
            var path = Path.Combine(full, name.Name + ".dll");
            return File.Exists(path) ? context.LoadFromAssemblyPath(path) : null;
        };
    }
}

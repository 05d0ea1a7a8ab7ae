using System.Reflection;
using System.Text;
using SelfPlay.Core.Config;

namespace SelfPlay.Actors.Configuration;

/// <summary>
/// Builds the config records from keys by convention, in one place: each constructor parameter reads the key that is
/// its name in kebab case under its record's section (<c>LearnerConfig.LearningRate</c> ← <c>learner.learning-rate</c>),
/// or the key its <see cref="ConfigKeyAttribute"/> names; a parameter of a record type is a section of its own.
/// Defaults live only in reference.conf, which is always the fallback.
/// </summary>
public static class ConfigBinder
{
    /// <param name="read">reads one key (relative to "selfplay") as a value of the type given</param>
    public static T Bind<T>(Func<string, Type, object> read) where T : class => (T)Bind(typeof(T), "", read);

    static object Bind(Type record, string section, Func<string, Type, object> read)
    {
        var constructor = record.GetConstructors().MaxBy(c => c.GetParameters().Length)
                          ?? throw new InvalidOperationException($"{record.Name} has no public constructor");
        var arguments = constructor.GetParameters().Select(parameter =>
        {
            var attribute = parameter.GetCustomAttribute<ConfigKeyAttribute>();
            var name = attribute?.Key ?? Kebab(parameter.Name!);
            var key = attribute?.FromRoot == true || section.Length == 0 ? name : $"{section}.{name}";
            var type = Nullable.GetUnderlyingType(parameter.ParameterType) ?? parameter.ParameterType;
            return IsSection(type) ? Bind(type, key, read) : read(key, type);
        }).ToArray();
        return constructor.Invoke(arguments);
    }

    /// <summary>A config record (a section), as opposed to a value.</summary>
    static bool IsSection(Type type) => type.IsClass && type.Namespace == typeof(CampaignConfig).Namespace;

    /// <summary>HiddenSize → hidden-size, CPuct → c-puct, MinQGap → min-q-gap.</summary>
    public static string Kebab(string name)
    {
        var key = new StringBuilder();
        foreach (var ch in name)
        {
            if (char.IsUpper(ch) && key.Length > 0) key.Append('-');
            key.Append(char.ToLowerInvariant(ch));
        }
        return key.ToString();
    }
}

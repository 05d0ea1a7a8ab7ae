using System.Globalization;
using SelfPlay.Core.Config;

namespace SelfPlay.Core.Environments;

/// <summary>Typed reads of environment.settings.* for providers; a bad or unknown key is a one-line error.</summary>
public static class EnvironmentSettings
{
    /// <summary>Rejects keys the provider does not know, so a typo is an error rather than a silent default.</summary>
    public static void CheckKnown(this EnvironmentConfig config, string environment, params string[] known)
    {
        foreach (var key in (config.Settings ?? new Dictionary<string, string>()).Keys)
            if (!known.Contains(key))
                throw new ArgumentException($"{environment}: unknown setting environment.settings.{key} (known: {(known.Length == 0 ? "none" : string.Join(", ", known))})");
    }

    public static string Setting(this EnvironmentConfig config, string key, string fallback) =>
        config.Settings is { } s && s.TryGetValue(key, out var value) ? value : fallback;

    public static int Setting(this EnvironmentConfig config, string key, int fallback, int min, int max)
    {
        var text = config.Setting(key, fallback.ToString(CultureInfo.InvariantCulture));
        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new ArgumentException($"environment.settings.{key} must be an integer in {min}..{max}, got '{text}'");
    }
}

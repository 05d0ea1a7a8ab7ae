using System.Reflection;
using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Learning;
using SelfPlay.Core.Config;
using SelfPlay.Core.Preferences;
using SelfPlay.Models.Training;

namespace SelfPlay.Actors.Tests;

/// <summary>One place per setting: reference.conf holds every default, every key it documents reaches a record, and
/// the defaults the records and option types carry for callers outside a campaign are reference.conf's.</summary>
public class ConfigBindingTests
{
    static CampaignConfig Defaults(ISet<string>? keysRead = null) => ConfigLoader.Parse(ConfigLoader.Build(null, []), keysRead);

    [Fact]
    public void Every_reference_key_is_read_and_nothing_else_is()
    {
        var read = new HashSet<string>();
        Defaults(read);
        var documented = ConfigLoader.LeafPaths(ConfigLoader.Reference(), "selfplay").Select(k => k["selfplay.".Length..])
            .Where(k => !k.StartsWith("environment.settings.", StringComparison.Ordinal)) // free-form: the environment reads them
            .Where(k => !k.EndsWith(".api-key", StringComparison.Ordinal))                // documented to be refused (Build), never read
            .ToHashSet();
        Assert.Empty(documented.Except(read).Order());  // documented, but no record takes it
        Assert.Empty(read.Except(documented).Order());  // read, but not documented (Parse refuses that too)
    }

    [Fact]
    public void The_records_defaults_are_reference_conf_defaults()
    {
        var mismatches = new List<string>();
        Compare(Defaults(), "selfplay", mismatches);
        Assert.Empty(mismatches);
    }

    [Fact]
    public void The_extractor_and_loss_options_defaults_are_reference_conf_defaults()
    {
        var defaults = Defaults();
        Assert.Equal(new ExtractorOptions(), LearnerSettings.Extractor(defaults.Preferences));
        Assert.Equal(new LossOptions(), LearnerSettings.Loss(defaults.Learner));
    }

    [Fact]
    public void Kto_weights_have_keys()
    {
        var c = ConfigLoader.Parse(ConfigLoader.Build(null, ["learner.loss=kto", "learner.desirable-weight=1.33", "learner.undesirable-weight=0.5"]));
        Assert.Equal((1.33, 0.5), (LearnerSettings.Loss(c.Learner).DesirableWeight, LearnerSettings.Loss(c.Learner).UndesirableWeight));
        Assert.Contains("desirable-weight", Assert.Throws<ConfigException>(() => ConfigLoader.Parse(ConfigLoader.Build(null, ["learner.undesirable-weight=0"]))).Message);
    }

    /// <summary>Each record parameter with a default must default to what reference.conf gives it (recursively).</summary>
    static void Compare(object record, string path, List<string> mismatches)
    {
        var type = record.GetType();
        var constructor = type.GetConstructors().OrderByDescending(c => c.GetParameters().Length).First();
        foreach (var parameter in constructor.GetParameters())
        {
            var value = type.GetProperty(parameter.Name!, BindingFlags.Public | BindingFlags.Instance)!.GetValue(record);
            var at = $"{path}.{parameter.Name}";
            if (value is not null && value.GetType().Namespace == typeof(CampaignConfig).Namespace && value.GetType().IsClass)
                Compare(value, at, mismatches);
            else if (parameter.HasDefaultValue && parameter.DefaultValue is not null && !Equals(parameter.DefaultValue, value))
                mismatches.Add($"{at}: the record says {parameter.DefaultValue}, reference.conf {value}");
        }
    }
}

using SelfPlay.Actors.Configuration;

namespace SelfPlay.Actors.Tests;

public class ConfigTests
{
    [Fact]
    public void Reference_defaults_parse_and_overrides_apply_in_order()
    {
        var defaults = ConfigLoader.Parse(ConfigLoader.Build(null, []));
        Assert.Equal("game24", defaults.Name);
        Assert.Equal("operation", defaults.Environment.StepMode);
        Assert.True(defaults.Environment.HeldOut >= 200);

        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "selfplay { search.simulations = 7, iterations { count = 5 } }");
            var c = ConfigLoader.Parse(ConfigLoader.Build(file, ["search.simulations=9", "selfplay.learner.loss=cdpo"]));
            Assert.Equal(9, c.Search.Simulations);      // --set wins over the file
            Assert.Equal(5, c.Iterations.Count);        // the file wins over reference.conf
            Assert.Equal("cdpo", c.Learner.Loss);
            Assert.Equal(defaults.Model, c.Model);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("search.simulatons=3", "unknown setting selfplay.search.simulatons")]
    [InlineData("search=3", "unknown setting selfplay.search")]
    [InlineData("nonsense", "--set expects key=value")]
    [InlineData("search.simulations=many", "selfplay.search.simulations")]
    [InlineData("environment.step-mode=telepathy", "step-mode must be operation or whole-step")]
    [InlineData("search.algorithm=alphago", "search.algorithm must be one of")]
    [InlineData("persistence.provider=oracle", "provider must be sqlite or postgres")]
    public void Bad_overrides_fail_with_one_line(string set, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(ConfigLoader.Build(null, [set])));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Campaign_files_are_checked()
    {
        Assert.Contains("not found", Assert.Throws<ConfigException>(() => ConfigLoader.Build("/no/such/file.conf", [])).Message);
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "selfplay { learner { bta = 0.2 } }");
            Assert.Contains("unknown setting selfplay.learner.bta", Assert.Throws<ConfigException>(() => ConfigLoader.Build(file, [])).Message);
            // Akka's HOCON parser accepts a truncated file; the missing value is still caught, by name.
            File.WriteAllText(file, "selfplay { learner { beta = ");
            Assert.Contains("selfplay.learner.beta", Assert.Throws<ConfigException>(() => ConfigLoader.Parse(ConfigLoader.Build(file, []))).Message);
        }
        finally
        {
            File.Delete(file);
        }
    }
}

using SelfPlay.Actors.Configuration;

namespace SelfPlay.Actors.Tests;

public class EnvironmentActorConfigTests
{
    [Fact]
    public void Environment_actor_settings_default_to_a_local_pool_and_parse()
    {
        var defaults = ConfigLoader.Parse(ConfigLoader.Build(null, []));
        Assert.Equal((4, "local"), (defaults.Actors.EnvironmentActors, defaults.Actors.EnvironmentPlacement));
        var cluster = ConfigLoader.Parse(ConfigLoader.Build(null, ["actors.environment-placement=cluster", "actors.environment-actors=2"]));
        Assert.Equal((2, "cluster"), (cluster.Actors.EnvironmentActors, cluster.Actors.EnvironmentPlacement));
    }

    [Theory]
    [InlineData("actors.environment-placement=moon", "selfplay.actors.environment-placement must be local or cluster, got 'moon'")]
    [InlineData("actors.environment-actors=0", "selfplay.actors settings must be positive")]
    [InlineData("actors.environment-actors=two", "selfplay.actors.environment-actors")]
    public void Bad_environment_actor_settings_fail_with_one_line(string set, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(ConfigLoader.Build(null, [set])));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}

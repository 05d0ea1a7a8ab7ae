using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Hosting;
using SelfPlay.Core.Config;

namespace SelfPlay.Actors.Tests;

/// <summary>Secrets come only from environment variables, never from settings a run folder stores.</summary>
public sealed class SecretsConfigTests
{
    [Fact]
    public void A_literal_api_key_or_database_password_is_a_one_line_error()
    {
        var key = Assert.Throws<ConfigException>(() => ConfigLoader.Build(null, ["llm.api-key=sk-live-123"])).Message;
        Assert.Contains("llm.api-key-env", key);
        Assert.DoesNotContain("sk-live-123", key);
        var password = Assert.Throws<ConfigException>(() => ConfigLoader.Build(null,
            ["persistence.provider=postgres", "persistence.connection-string=Host=db;Username=u;Password=hunter2"])).Message;
        Assert.Contains("persistence.password-env", password);
        Assert.DoesNotContain("hunter2", password);
        Assert.Throws<ConfigException>(() => ConfigLoader.Build(null, ["persistence.connection-string=Host=db;PWD=hunter2"]));

        var file = Path.Combine(Path.GetTempPath(), "selfplay-secret-" + Guid.NewGuid().ToString("N") + ".conf");
        try
        {
            File.WriteAllText(file, "selfplay.llm.api-key = \"sk-in-a-file\"\n");
            Assert.Contains("literal key is refused", Assert.Throws<ConfigException>(() => ConfigLoader.Build(file, [])).Message);
        }
        finally { File.Delete(file); }
        Assert.Equal("", ConfigLoader.Parse(ConfigLoader.Build(null, [])).Environment.Llm!.ApiKeyEnv); // no default key variable
    }

    [Fact]
    public void The_database_password_is_added_from_its_environment_variable_when_the_journal_connects()
    {
        var config = ConfigLoader.Parse(ConfigLoader.Build(null,
            ["persistence.provider=postgres", "persistence.connection-string=Host=db;Username=u", "persistence.password-env=SELFPLAY_TEST_DB_PASSWORD"]));
        Assert.DoesNotContain("hunter2", ConfigLoader.Render(ConfigLoader.Build(null,
            ["persistence.provider=postgres", "persistence.connection-string=Host=db;Username=u", "persistence.password-env=SELFPLAY_TEST_DB_PASSWORD"])));
        Environment.SetEnvironmentVariable("SELFPLAY_TEST_DB_PASSWORD", null);
        Assert.Contains("is not set", Assert.Throws<ConfigException>(() => SelfPlayHost.ConnectionString(config.Persistence, ".")).Message);
        Environment.SetEnvironmentVariable("SELFPLAY_TEST_DB_PASSWORD", "hunter2");
        var connection = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = SelfPlayHost.ConnectionString(config.Persistence, ".") };
        Assert.Equal("hunter2", connection["password"]);
        Assert.Equal("db", connection["host"]);
    }
}

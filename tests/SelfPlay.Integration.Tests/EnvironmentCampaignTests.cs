using System.Text.Json;

namespace SelfPlay.Integration.Tests;

/// <summary>Every built-in environment's quick campaign through the real CLI, as its config file says.</summary>
public class EnvironmentCampaignTests
{
    [Theory]
    [InlineData("countdown")]
    [InlineData("word-problems")]
    [InlineData("tool-use")]
    [InlineData("webshop")]
    [InlineData("instructions")]
    public async Task Quick_campaign_completes(string environment)
    {
        var runDir = Path.Combine(Path.GetTempPath(), $"selfplay-{environment}-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = await CliRunner.RunAsync("run", "--config", $"hocon/campaigns/{environment}-quick.conf", "--run-dir", runDir);
            Assert.True(result.ExitCode == 0, result.Stdout + result.Stderr);
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, "summary.json")));
            var root = summary.RootElement;
            Assert.Equal(environment, root.GetProperty("environment").GetString());
            Assert.Equal("completed", root.GetProperty("status").GetString());
            var rows = root.GetProperty("iterations");
            Assert.Equal(2, rows.GetArrayLength());
            Assert.Equal(12, rows[1].GetProperty("trees").GetInt32());
            Assert.Equal(0, rows[1].GetProperty("failedTasks").GetInt32());
            Assert.Equal(20, rows[1].GetProperty("heldOut").GetProperty("total").GetInt32());
        }
        finally
        {
            if (Directory.Exists(runDir)) Directory.Delete(runDir, true);
        }
    }
}

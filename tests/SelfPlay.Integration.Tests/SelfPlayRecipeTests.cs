using System.Text.Json;
using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Recipes;
using SelfPlay.Cli;

namespace SelfPlay.Integration.Tests;

/// <summary>The in-process recipe (one file, no actors) is the campaign: run on the same settings, it searches the
/// same trees, extracts the same examples and trains to the same losses as `selfplay run`.</summary>
public sealed class SelfPlayRecipeTests : IDisposable
{
    readonly string _dir = Path.Combine(Path.GetTempPath(), "selfplay-recipe-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task The_recipe_matches_a_campaign_with_the_same_settings()
    {
        // One search worker: the campaign's inference then sees the same requests, one search at a time, as the recipe's.
        string[] sets = ["actors.search-workers=1"];
        var file = Path.Combine(CliRunner.RepoRoot, "hocon", "campaigns", "game24-quick.conf");
        var config = ConfigLoader.Parse(ConfigLoader.Build(file, sets));
        var lines = new List<string>();
        var recipe = await SelfPlayRecipe.RunAsync(config, SelfPlayCommand.Environments().Create(config.Environment), Path.Combine(_dir, "recipe"), lines.Add);

        Assert.Equal(config.Iterations.Count + 1, recipe.Count);
        Assert.Equal(config.Iterations.Trees, recipe[1].Trees);
        Assert.True(recipe[1].Examples > 0, string.Join('\n', lines));
        Assert.True(double.IsFinite(recipe[1].FirstLoss));
        Assert.True(File.Exists(Path.Combine(_dir, "recipe", "checkpoints", "v1", "config.json")));

        var run = await CliRunner.RunAsync(["run", "--config", file, "--set", sets[0], "--run-dir", Path.Combine(_dir, "campaign")]);
        Assert.True(run.ExitCode == 0, run.Stderr);
        var iterations = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "campaign", "summary.json"))).RootElement.GetProperty("iterations");
        foreach (var (mine, theirs) in recipe.Zip(iterations.EnumerateArray().ToList()))
        {
            var at = $"iteration {mine.Iteration}";
            Assert.True(theirs.GetProperty("heldOut").GetProperty("solved").GetInt32() == mine.HeldOut.Solved, at);
            Assert.True(Math.Abs(theirs.GetProperty("trainLossFirst").GetDouble() - mine.FirstLoss) < 1e-4, $"{at}: first loss {theirs.GetProperty("trainLossFirst")} vs {mine.FirstLoss}");
            Assert.True(Math.Abs(theirs.GetProperty("trainLossLast").GetDouble() - mine.LastLoss) < 1e-4, $"{at}: last loss {theirs.GetProperty("trainLossLast")} vs {mine.LastLoss}");
            if (mine.Iteration == 0) continue;
            Assert.Equal(theirs.GetProperty("solvedTrees").GetInt32(), mine.SolvedTrees);
            Assert.Equal(theirs.GetProperty("pairs").GetInt32(), mine.Examples);
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}

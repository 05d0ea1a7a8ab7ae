using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Samples.Game24;

namespace SelfPlay.Core.Tests.Environments;

public class TaskExclusionTests
{
    [Theory]
    [InlineData("10 6 5 4", "4 5 6 10")]
    [InlineData(" 4  5 6\t10 ", "4 5 6 10")]
    [InlineData("write  about cats", "write about cats")]
    public void Inputs_match_in_canonical_form(string a, string b) => Assert.Equal(TaskExclusion.Canonical(b), TaskExclusion.Canonical(a));

    [Fact]
    public void Excluded_training_tasks_are_removed_in_any_number_order_and_counted_and_held_out_tasks_stay()
    {
        var config = new EnvironmentConfig("game24", "operation", HeldOut: 300, SplitSeed: 24, MaxSteps: 4);
        var registry = new EnvironmentRegistry().Register(new Game24Provider());
        var full = registry.Create(config);
        var file = Path.Combine(Path.GetTempPath(), "selfplay-exclude-" + Guid.NewGuid().ToString("N") + ".txt");
        try
        {
            // Three training puzzles written in reverse order, a held-out one, a comment and a blank line.
            var excluded = full.Train.Take(3).Select(t => string.Join(' ', t.Input.Split(' ').Reverse())).ToList();
            File.WriteAllLines(file, ["# Tree-of-Thoughts test rows", .. excluded, "", full.HeldOut[0].Input]);
            var setup = registry.Create(config with { ExcludeFile = file });
            Assert.Equal(full.Train.Count - 3, setup.Train.Count);
            Assert.Equal(3, setup.ExcludedTasks);
            Assert.DoesNotContain(setup.Train, t => full.Train.Take(3).Any(x => x.Id == t.Id));
            Assert.Equal(full.HeldOut.Select(t => t.Id), setup.HeldOut.Select(t => t.Id));
            Assert.Contains("exclude-file not found", Assert.Throws<ArgumentException>(() => registry.Create(config with { ExcludeFile = file + ".none" })).Message);
        }
        finally { File.Delete(file); }
    }
}

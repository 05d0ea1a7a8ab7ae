using System.Text.Json.Nodes;
using SelfPlay.Core.Preferences;

namespace SelfPlay.Core.Tests;

public class PreferenceFormatTests
{
    static readonly PreferenceExample Pair = PreferenceExample.Pair("t", "Input: 4 5 6 10\n",
        new Candidate([CompletionStep.FromText("5 * 4 = 20 (left: 6 10 20)\n"), CompletionStep.FromText("10 - 6 = 4 (left: 4 20)\n")], 1),
        new Candidate([CompletionStep.FromText("5 + 4 = 9 (left: 6 9 10)\n")], 0));

    [Fact]
    public void Conversational_records_hold_a_user_turn_and_assistant_turns_and_read_back()
    {
        var line = Assert.Single(PreferenceFormats.Export([Pair], "trl-conversational"));
        var o = JsonNode.Parse(line)!.AsObject();
        Assert.Equal("user", o["prompt"]![0]!["role"]!.GetValue<string>());
        Assert.Equal("Input: 4 5 6 10\n", o["prompt"]![0]!["content"]!.GetValue<string>());
        Assert.Equal("assistant", o["chosen"]![0]!["role"]!.GetValue<string>());
        Assert.Equal(Pair.Candidates[0].Text, o["chosen"]![0]!["content"]!.GetValue<string>());
        Assert.Equal(Pair.Candidates[1].Text, o["rejected"]![0]!["content"]!.GetValue<string>());
        var (examples, errors) = PreferenceFormats.Import([line, "{\"prompt\":\"x\",\"chosen\":[],\"rejected\":[]}"], "trl-conversational", "f", rejectOnError: false);
        Assert.Equal((Pair.Prompt, Pair.Candidates[0].Text, Pair.Candidates[1].Text), (examples[0].Prompt, examples[0].Candidates[0].Text, examples[0].Candidates[1].Text));
        Assert.Equal(2, Assert.Single(errors).Line);
    }

    [Fact]
    public void With_the_campaigns_chat_format_conversational_records_hold_its_turns_without_markers()
    {
        // A ChatML-like format (the reader is the template's; here a minimal one for "<u>…" user and "<t>…" tool turns).
        const string prompt = "<u>Input: 4 5 6 10\n<a>";
        var pair = PreferenceExample.Pair("t", prompt,
            new Candidate([CompletionStep.FromText("5 * 4 =<t> 20 (left: 6 10 20)\n<a>"), CompletionStep.FromText("10 - 6 =<t> 4\n<a>")], 1),
            new Candidate([CompletionStep.FromText("5 + 4 =<t> 9\n<a>")], 0));
        static IReadOnlyList<(string Role, string Content)> Turns(string text) =>
            [.. System.Text.RegularExpressions.Regex.Matches(text, "<(?<r>[uat])>(?<c>[^<]*)")
                .Where(m => m.Groups["c"].Length > 0)
                .Select(m => (m.Groups["r"].Value switch { "u" => "user", "a" => "assistant", _ => "tool" }, m.Groups["c"].Value))];
        var o = JsonNode.Parse(Assert.Single(PreferenceFormats.Export([pair], "trl-conversational", turns: Turns)))!.AsObject();
        string Roles(string key) => string.Join(",", o[key]!.AsArray().Select(t => t!["role"]!.GetValue<string>()));
        Assert.Equal("user", Roles("prompt"));
        Assert.Equal("Input: 4 5 6 10\n", o["prompt"]![0]!["content"]!.GetValue<string>());
        Assert.Equal("assistant,tool,assistant,tool", Roles("chosen"));
        Assert.Equal(" 20 (left: 6 10 20)\n", o["chosen"]![1]!["content"]!.GetValue<string>());
        Assert.Equal("assistant,tool", Roles("rejected"));
        Assert.All(new[] { "prompt", "chosen", "rejected" }.SelectMany(k => o[k]!.AsArray()), t => Assert.DoesNotContain('<', t!["content"]!.GetValue<string>()));
    }

    [Fact]
    public void Stepwise_labels_the_steps_a_rejected_trajectory_shares_with_the_chosen_one_good()
    {
        CompletionStep S(string text) => CompletionStep.FromText(text + "\n");
        var pair = PreferenceExample.Pair("t", "Input: 4 5 6 10\n",
            new Candidate([S("5 * 4 = 20 (left: 6 10 20)"), S("10 - 6 = 4 (left: 4 20)"), S("20 + 4 = 24 (left: 24)")], 1),
            new Candidate([S("5 * 4 = 20 (left: 6 10 20)"), S("10 + 6 = 16 (left: 16 20)"), S("20 - 16 = 4 (left: 4)")], 0));
        var lines = PreferenceFormats.Export([pair], "trl-stepwise").Select(l => JsonNode.Parse(l)!).ToList();
        bool[] Labels(JsonNode o) => [.. o["labels"]!.AsArray().Select(l => l!.GetValue<bool>())];
        Assert.Equal([true, true, true], Labels(lines[0]));
        Assert.Equal([true, false, false], Labels(lines[1])); // the shared first step is the chosen one's: good
        // A rejected trajectory that is a prefix of the chosen one still ends with a bad step, so it pairs again.
        var prefix = PreferenceExample.Pair("t", "P\n", pair.Candidates[0], new Candidate([pair.Candidates[0].Steps[0]], 0));
        var prefixLines = PreferenceFormats.Export([prefix], "trl-stepwise").ToList();
        Assert.Equal([false], Labels(JsonNode.Parse(prefixLines[1])!));
        var (examples, errors) = PreferenceFormats.Import([.. lines.Select(l => l.ToJsonString())], "trl-stepwise", "f", rejectOnError: true);
        Assert.Empty(errors);
        Assert.Equal(pair.Candidates[1].Text, Assert.Single(examples).Candidates[1].Text);
    }

    [Fact]
    public void Kto_records_are_unpaired_completions_with_labels_and_pair_again_by_prompt()
    {
        var lines = PreferenceFormats.Export([Pair], "trl-kto").ToList();
        Assert.Equal(2, lines.Count);
        Assert.True(JsonNode.Parse(lines[0])!["label"]!.GetValue<bool>());
        Assert.Equal(Pair.Candidates[1].Text, JsonNode.Parse(lines[1])!["completion"]!.GetValue<string>());
        var (examples, errors) = PreferenceFormats.Import([.. lines, "{\"prompt\":\"alone\",\"completion\":\"x\",\"label\":true}"], "trl-kto", "f", rejectOnError: false);
        var pair = Assert.Single(examples);
        Assert.Equal(Pair.Candidates[0].Text, pair.Candidates[0].Text);
        Assert.Equal(Pair.Candidates[1].Text, pair.Candidates[1].Text);
        Assert.Equal(3, Assert.Single(errors).Line); // a prompt with nothing to pair with
    }
}

using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;
using SelfPlay.Samples.WebShop;

namespace SelfPlay.Core.Tests.Environments;

/// <summary>One real shop server (Kestrel on 127.0.0.1) for all the tests of this class.</summary>
public sealed class ShopFixture : IDisposable
{
    public Catalogue Catalogue { get; } = new();
    public WebShopEnvironment Env { get; }

    public ShopFixture()
    {
        var server = ShopServer.Start(Catalogue);
        Env = new WebShopEnvironment(server.Address, Catalogue, server);
    }

    public void Dispose() => Env.Dispose();
}

public class WebShopTests(ShopFixture shop) : IClassFixture<ShopFixture>
{
    EnvTask TaskFor(Product p, string size) => new("t", $"{p.Id} {size} {p.Price + 5}");

    [Fact]
    public void The_reference_episode_searches_opens_chooses_and_buys_over_http()
    {
        var product = shop.Catalogue.Products[12];
        var task = TaskFor(product, product.Sizes[^1]);
        var env = shop.Env;
        Assert.Equal($"Task: {product.Title}, size {product.Sizes[^1]}, under {product.Price + 5}\n> [search]\n", env.InitialState(task));
        var steps = EpisodeRunner.Play(env, task, env.ReferenceActions(task, new Random(1))!);
        Assert.Equal(4, steps.Count);
        Assert.StartsWith($"search[{product.Title}]\n> [{product.Id}] {product.Title} {product.Price} [", steps[0].Outcome.Appended);
        Assert.EndsWith("[back]\n", steps[0].Outcome.Appended);
        Assert.Equal($"click[{product.Id}]\n> {product.Title} {product.Price} {string.Join(' ', product.Sizes.Select(s => $"[{s}]"))} [buy] [back]\n", steps[1].Outcome.Appended);
        Assert.Contains($"({product.Sizes[^1]})", steps[2].Outcome.Appended);
        Assert.Equal((true, 1.0, "solved"), (steps[3].Outcome.IsTerminal, steps[3].Outcome.Reward, steps[3].Outcome.Reason));
        var final = steps[^1].StateBefore + steps[^1].Outcome.Appended;
        Assert.Equal((1.0, "solved"), env.Verify(task, final));
        Assert.Equal(0, env.Verify(task, final.Replace($"] {product.Title} {product.Price}", $"] {product.Title} 1")).Reward); // a forged page
        Assert.Contains("click[buy]", env.LegalActions(task, steps[3].StateBefore)!);
    }

    [Fact]
    public async Task Step_scores_say_whether_the_goal_is_listed_and_what_buying_now_would_earn()
    {
        var product = shop.Catalogue.Products[12];
        var size = product.Sizes[^1];
        var task = TaskFor(product, size);
        var env = shop.Env;
        var start = env.InitialState(task);
        // The environment steps attach the score to each open outcome (search.critic = environment reads it there).
        var reference = new InlineEnvironmentSteps(env, scoreSteps: true);
        var state = start;
        var scores = new List<double?>();
        foreach (var action in env.ReferenceActions(task, new Random(1))!)
        {
            var outcome = (await reference.StepAsync(task, [new EnvStep(state, action)]))[0];
            scores.Add(outcome.StepScore);
            state += outcome.Appended;
        }
        // Listed; the goal's page with no size chosen (4 of 5 attributes); the goal's size; the purchase has no step score.
        Assert.Equal(new double?[] { 1, 0.8, 1, null }, scores);

        var other = shop.Catalogue.Products.First(p => p.Category != product.Category && p.Color != product.Color && p.Material != product.Material);
        var elsewhere = start + env.Step(task, start, $"search[{other.Title}").Appended;
        Assert.DoesNotContain($"[{product.Id}]", elsewhere);
        Assert.Equal(0, env.ScoreStep(task, start, $"search[{other.Title}", env.Step(task, start, $"search[{other.Title}")));
        var open = env.Step(task, elsewhere, $"click[{other.Id}");
        Assert.Equal(other.Price < product.Price + 5 ? 0.2 : 0, env.ScoreStep(task, elsewhere, $"click[{other.Id}", open)!.Value, 6);
        // Back on the start page nothing is on offer yet.
        var back = env.Step(task, elsewhere + open.Appended, "click[back");
        Assert.Equal(0, env.ScoreStep(task, elsewhere + open.Appended, "click[back", back));
    }

    [Fact]
    public void A_shop_that_did_not_answer_at_first_is_asked_again_on_the_next_task()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var catalogue = new Catalogue();
        using var env = new WebShopEnvironment(new Uri($"http://127.0.0.1:{port}/"), catalogue);
        var task = TaskFor(catalogue.Products[3], catalogue.Products[3].Sizes[0]);
        Assert.Throws<HttpRequestException>(() => env.InitialState(task)); // nothing listens yet
        using var server = ShopServer.Start(catalogue, port);
        Assert.EndsWith("> [search]\n", env.InitialState(task));
    }

    [Fact]
    public void The_reward_is_the_attribute_match_of_the_bought_item()
    {
        var product = shop.Catalogue.Products[0];
        var other = shop.Catalogue.Products.First(p => p.Category == product.Category && p.Material == product.Material && p.Color != product.Color);
        var task = TaskFor(product, product.Sizes[0]);
        var env = shop.Env;
        // Buys a product of another color, without choosing a size: category, material (and perhaps price) match.
        var steps = EpisodeRunner.Play(env, task, [$"search[{other.Title}", $"click[{other.Id}", "click[buy"]);
        var outcome = steps[^1].Outcome;
        var expected = (2 + (other.Price < product.Price + 5 ? 1 : 0)) / 5.0;
        Assert.Equal(expected, outcome.Reward, 6);
        Assert.Contains("color", outcome.Reason);
        Assert.Contains("size", outcome.Reason);
        Assert.Equal(expected, env.Verify(task, steps[^1].StateBefore + outcome.Appended).Reward, 6);
    }

    [Fact]
    public void Clicks_on_missing_elements_and_malformed_actions_earn_0_with_a_reason()
    {
        var product = shop.Catalogue.Products[5];
        var task = TaskFor(product, product.Sizes[0]);
        var env = shop.Env;
        var start = env.InitialState(task);
        Assert.Equal("there is no 'p999' to click on this page", env.Step(task, start, "click[p999").Reason);
        Assert.Equal("there is no 'buy' to click on this page", env.Step(task, start, "click[buy").Reason);
        Assert.Equal("empty search", env.Step(task, start, "search[").Reason);
        var results = start + env.Step(task, start, $"search[{product.Title}").Appended;
        Assert.Equal("there is no search box on this page (click[back] first)", env.Step(task, results, "search[hat").Reason);
        Hostile.AssertRejected(env, task, Hostile.Actions.Concat(["click[p999", "click[buy", "click[", "search[", "buy", "click[../../etc/passwd",
            "search[" + new string('a', 70), "CLICK[p1", "click[p1]] extra"]));
        Hostile.AssertRejected(env, task, ["search[shirt", "click[l", "click[p99999"], state: results);
        Hostile.AssertVerifyRejects(env, task);
    }

    [Fact]
    public void An_unreachable_shop_is_a_step_with_reward_0_not_an_exception()
    {
        var catalogue = new Catalogue();
        var server = ShopServer.Start(catalogue);
        var address = server.Address;
        server.Dispose();
        using var env = new WebShopEnvironment(address, catalogue, httpTimeout: TimeSpan.FromSeconds(2));
        var task = new EnvTask("t", $"p0 {catalogue.Products[0].Sizes[0]} 200");
        var outcome = env.Step(task, "Task: x\n> [search]\n", "search[red");
        Assert.Equal((true, 0.0), (outcome.IsTerminal, outcome.Reward));
        Assert.StartsWith("the shop did not answer", outcome.Reason);
    }

    [Fact]
    public void Provider_goals_are_distinct_and_their_references_solve()
    {
        var setup = new WebShopProvider().Create(new EnvironmentConfig("webshop", "operation", 20, 3, 8, TrainTasks: 60));
        try
        {
            Assert.Empty(setup.HeldOut.Select(t => t.Input).Intersect(setup.Train.Select(t => t.Input)));
            Hostile.AssertReferenceSolutionsSolve(setup.Environment, setup.Train.Take(20).Concat(setup.HeldOut));
            Assert.Contains("distinct goals", Assert.Throws<ArgumentException>(() =>
                new WebShopProvider().Create(new EnvironmentConfig("webshop", "operation", 20, 3, 8, TrainTasks: 100_000))).Message);
        }
        finally
        {
            ((IDisposable)setup.Environment).Dispose();
        }
    }
}

using SelfPlay.Core.Config;
using SelfPlay.Core.Environments;

namespace SelfPlay.Samples.WebShop;

/// <summary>
/// environment.type = webshop: starts the shop on 127.0.0.1 (an ephemeral port) for the life of the process and
/// draws distinct goals (product, size, a price limit above its price) seeded by split-seed.
/// </summary>
public sealed class WebShopProvider : IEnvironmentProvider
{
    public string Name => "webshop";

    public EnvironmentSetup Create(EnvironmentConfig config)
    {
        config.CheckKnown(Name);
        var catalogue = new Catalogue();
        var goals = Goals(catalogue, config.SplitSeed).ToList();
        if (config.HeldOut + config.TrainTasks > goals.Count)
            throw new ArgumentException($"webshop has {goals.Count} distinct goals; environment.held-out + train-tasks is {config.HeldOut + config.TrainTasks}");
        var server = ShopServer.Start(catalogue);
        var environment = new WebShopEnvironment(server.Address, catalogue, server);
        environment.Prefetch();
        return new EnvironmentSetup(environment,
            goals[config.HeldOut..(config.HeldOut + config.TrainTasks)].Select((g, i) => new EnvTask($"shop-{i}", g)).ToList(),
            goals[..config.HeldOut].Select((g, i) => new EnvTask($"shop-h{i}", g)).ToList());
    }

    /// <summary>Every (product, size) with a limit 1..20 above the price rounded up to 5, shuffled.</summary>
    public static IEnumerable<string> Goals(Catalogue catalogue, int seed)
    {
        var random = new Random(seed);
        var goals = catalogue.Products.SelectMany(p => p.Sizes.Select(s => $"{p.Id} {s} {(p.Price + random.Next(1, 21) + 4) / 5 * 5}")).ToArray();
        random.Shuffle(goals);
        return goals;
    }
}

using Akka.Actor;
using Akka.Cluster;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Configuration;
using SelfPlay.Actors.Hosting;
using Serilog;

namespace SelfPlay.Cli;

/// <summary>
/// `selfplay node`: one member of a SelfPlay cluster running the given roles until it is stopped (Ctrl-C or SIGTERM
/// leave the cluster gracefully). Every node of a campaign is started with the same campaign config and run folder
/// (a shared volume on real clusters: checkpoints are published as paths in it), and the same PostgreSQL.
/// </summary>
public static class NodeCommand
{
    public static async Task<int> RunAsync(CliArgs a)
    {
        var metricsPort = a.Get("--metrics-port") is { } mp ? Dashboard.DashboardCommand.Port(mp) : (int?)null;
        var configFile = a.Get("--config") ?? throw new UsageException("node needs --config FILE");
        var roles = (a.Get("--roles") ?? throw new UsageException($"node needs --roles ROLE[,ROLE...] (roles: {string.Join(",", NodeOptions.AllRoles)})"))
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var unknown = roles.Except(NodeOptions.AllRoles).ToList();
        if (unknown.Count > 0) throw new UsageException($"unknown role '{unknown[0]}' (roles: {string.Join(",", NodeOptions.AllRoles)})");
        var port = a.Get("--port") is { } p ? int.TryParse(p, out var n) && n is >= 0 and < 65536 ? n : throw new UsageException($"--port must be 0..65535, got '{p}'") : 0;
        var config = ConfigLoader.Parse(ConfigLoader.Build(configFile, a.All("--set")));
        var runDir = a.Get("--run-dir") ?? Path.Combine("runs", config.Name);
        var setup = SelfPlayCommand.Environments().Create(config.Environment);
        Directory.CreateDirectory(runDir);

        Log.Logger = CliLogging.Create(Path.Combine(runDir, $"node-{string.Join("-", roles)}-{Environment.ProcessId}.log"), a,
            c => c.Enrich.WithProperty("Roles", string.Join(",", roles)));
        using var metrics = metricsPort is null ? null : new Dashboard.PrometheusMetrics();
        await using var metricsServer = metricsPort is { } m ? await metrics!.StartAsync(m) : null;
        try
        {
            var options = NodeOptions.For(config, roles, a.All("--seed"), a.Get("--hostname") ?? "127.0.0.1", port);
            SelfPlayHost.WarnAboutExposure(options);
            var system = SelfPlayHost.CreateNode(config.Persistence, runDir, options, campaign: new CampaignContext(config, setup, runDir));
            var cluster = Cluster.Get(system);
            var up = new TaskCompletionSource();
            cluster.RegisterOnMemberUp(() => up.TrySetResult());
            await up.Task.WaitAsync(TimeSpan.FromMinutes(2));
            Console.WriteLine($"node up: {cluster.SelfAddress} roles {string.Join(",", roles)} (pid {Environment.ProcessId})");

            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                CoordinatedShutdown.Get(system).Run(CoordinatedShutdown.ClrExitReason.Instance);
            };
            await system.WhenTerminated;
            Console.WriteLine("node stopped");
            return 0;
        }
        finally
        {
            await Log.CloseAndFlushAsync();
        }
    }
}

using Akka.Actor;
using Akka.Configuration;
using Akka.Persistence.Sql;
using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Inference;
using SelfPlay.Actors.Learning;
using SelfPlay.Actors.Protocol;
using SelfPlay.Actors.Replay;
using SelfPlay.Actors.Search;
using SelfPlay.Core.Config;
using SelfPlay.Core.Search;

namespace SelfPlay.Actors.Hosting;

/// <summary>The actors of one campaign in one ActorSystem.</summary>
public sealed record CampaignActors(ActorSystem System, IActorRef Coordinator, IActorRef Replay, IActorRef Inference, IActorRef Learner);

/// <summary>Builds the ActorSystem configuration (persistence, serializer, logging, dispatchers) and starts the roles.</summary>
public static class SelfPlayHost
{
    public const string PinnedDispatcher = "selfplay.pinned-dispatcher";

    public static string ConnectionString(PersistenceConfig persistence, string runDir) =>
        persistence.Provider == "sqlite" && persistence.ConnectionString.Length == 0
            ? $"Data Source={Path.Combine(Path.GetFullPath(runDir), "selfplay.db")}"
            : persistence.ConnectionString;

    /// <summary>Akka configuration for SelfPlay: SQL persistence with tags, the explicit serializer, Serilog.</summary>
    public static Config AkkaConfig(PersistenceConfig persistence, string runDir, bool serilog = true)
    {
        var provider = persistence.Provider == "postgres" ? "PostgreSQL.15" : "SQLite.MS";
        var connection = ConnectionString(persistence, runDir).Replace("\\", "\\\\").Replace("\"", "\\\"");
        var hocon = $$"""
            akka {
              loglevel = {{(serilog ? "INFO" : "WARNING")}}
              {{(serilog ? "loggers = [\"Akka.Logger.Serilog.SerilogLogger, Akka.Logger.Serilog\"]" : "")}}
              stdout-loglevel = WARNING
              log-dead-letters = off
              log-dead-letters-during-shutdown = off
              persistence {
                journal {
                  plugin = "akka.persistence.journal.sql"
                  sql { connection-string = "{{connection}}", provider-name = "{{provider}}", auto-initialize = on }
                }
                snapshot-store {
                  plugin = "akka.persistence.snapshot-store.sql"
                  sql { connection-string = "{{connection}}", provider-name = "{{provider}}", auto-initialize = on }
                }
                query.journal.sql {
                  connection-string = "{{connection}}"
                  provider-name = "{{provider}}"
                  write-plugin = "akka.persistence.journal.sql"
                }
              }
            }
            selfplay.pinned-dispatcher { type = PinnedDispatcher, executor = thread-pool-executor }
            """;
        return ConfigurationFactory.ParseString(hocon)
            .WithFallback(ConfigurationFactory.ParseString(SelfPlaySerializer.Hocon))
            .WithFallback(SqlPersistence.DefaultConfiguration);
    }

    public static CampaignActors Start(CampaignContext context, ActorSystem? system = null)
    {
        TorchSharp.torch.set_num_threads(context.Config.Model.Threads);
        system ??= ActorSystem.Create("selfplay", AkkaConfig(context.Config.Persistence, context.RunDir));
        var env = context.Setup.Environment;
        var replay = system.ActorOf(Props.Create(() => new ReplayActor()), "replay");
        var inference = system.ActorOf(Props.Create(() => new InferenceActor(context.Config.Model.Device, env.StepStop,
            context.Config.Model.MaxStepTokens, context.Config.Actors.InferenceBatchRows, context.Config.Model.DType,
            context.Config.Model.PrefixCacheMb)).WithDispatcher(PinnedDispatcher), "inference");
        var critic = system.ActorOf(Props.Create(() => new CriticActor(new VerifierEvaluator(env))), "critic");
        var learner = system.ActorOf(Props.Create(() => new LearnerActor(context)).WithDispatcher(PinnedDispatcher), "learner");
        var coordinator = system.ActorOf(Props.Create(() => new CampaignCoordinator(context, learner, inference)), "coordinator");
        var proposer = new ActorStepProposer(inference, context.AskTimeout);
        var evaluator = new ActorNodeEvaluator(critic, "verifier", context.AskTimeout);
        for (var i = 0; i < context.Config.Actors.SearchWorkers; i++)
            system.ActorOf(Props.Create(() => new SearchWorker(coordinator, replay, context, proposer, evaluator)), $"search-{i}");
        return new CampaignActors(system, coordinator, replay, inference, learner);
    }
}

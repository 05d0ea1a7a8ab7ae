using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Protocol;

namespace SelfPlay.Actors.Tests;

/// <summary>The coordinator's journaled state, transition by transition, without an actor.</summary>
public class CampaignStateTests
{
    static readonly DateTime T0 = new(2026, 12, 5, 8, 0, 0, DateTimeKind.Utc);

    static PolicyPublished Policy(int version) =>
        new(version, $"/run/checkpoints/v{version}", "sha", new TrainingReport(10, 5, 0.7, 0.5, 0.8, 12.5));

    static IterationSummary Row(int iteration) =>
        new(iteration, iteration == 0 ? "sft" : "selfplay", iteration, 4, 2, new HeldOutResult(1, 4, 0.25), 1, 1, 1, 0, 10, 1, 0, 0.7, 0.5, 0.8);

    /// <summary>A warm-up published and evaluated, then iteration 1 started with 3 tasks.</summary>
    static CampaignState InIteration1() => CampaignState.Recover([
        new CampaignStarted(T0), Policy(0), new IterationEvaluated(Row(0)), new IterationStarted(1, 0, 3, T0.AddMinutes(1))]);

    [Fact]
    public void A_new_campaign_has_no_policy_and_nothing_done()
    {
        var s = CampaignState.Empty;
        Assert.Equal((-1, 0, 0), (s.PolicyVersion, s.Iteration, s.DoneTasks.Count));
        Assert.Null(s.Finished);
        Assert.Equal(T0, s.Apply(new CampaignStarted(T0)).StartedUtc);
    }

    [Fact]
    public void Policy_published_sets_the_version_and_evaluated_records_its_row()
    {
        var s = CampaignState.Empty.Apply(Policy(0));
        Assert.Equal((0, 0, false), (s.PolicyVersion, s.Iteration, s.Evaluated(0)));
        s = s.Apply(new IterationEvaluated(Row(0)));
        Assert.True(s.Evaluated(0));
        // A published version the iteration counter has not reached yet moves it on (a journal cut after training).
        Assert.Equal(3, s.Apply(Policy(3)).Iteration);
    }

    [Fact]
    public void Task_completed_and_failed_count_once_and_only_in_their_iteration()
    {
        var s = InIteration1();
        Assert.Equal((1, 3, T0.AddMinutes(1)), (s.Iteration, s.TaskCount, s.IterationStartedUtc));
        s = s.Apply(new TaskRecorded(1, "a", 7, true, false, T0.AddMinutes(2)))
            .Apply(new TaskRecorded(1, "a", 7, true, false, T0.AddMinutes(3)))   // a repeat (a worker re-sending its outcome)
            .Apply(new TaskRecorded(0, "b", 9, true, false, T0.AddMinutes(3)))   // a late outcome of an earlier iteration
            .Apply(new TaskRecorded(1, "c", 0, false, true, T0.AddMinutes(4)));  // given up
        Assert.Equal((2, 7, 1, 1), (s.DoneTasks.Count, s.Nodes, s.SolvedTrees, s.FailedTasks));
        Assert.Equal(T0.AddMinutes(4), s.LastTaskUtc);
        Assert.False(s.SearchDone);
        s = s.Apply(new TaskRecorded(1, "b", 3, false, false, T0.AddMinutes(5)));
        Assert.True(s.SearchDone);
        Assert.False(s.AllFailed);
    }

    [Fact]
    public void Every_task_failed_is_all_failed_and_a_new_start_of_the_iteration_forgets_it()
    {
        var s = InIteration1();
        foreach (var task in new[] { "a", "b", "c" }) s = s.Apply(new TaskRecorded(1, task, 0, false, true, T0));
        Assert.True(s.SearchDone && s.AllFailed);
        s = s.Apply(new IterationStarted(1, 0, 3, T0.AddMinutes(9)));
        Assert.Equal((0, 0, false), (s.DoneTasks.Count, s.FailedTasks, s.SearchDone));
    }

    [Fact]
    public void Task_leased_keeps_one_lease_per_worker_until_its_outcome()
    {
        var s = InIteration1()
            .Apply(new TaskLeased(1, "a", 1, "worker-1"))
            .Apply(new TaskLeased(1, "b", 2, "worker-2"))
            .Apply(new TaskLeased(1, "c", 3, "worker-1"));  // worker-1 moved on: it no longer searches a
        Assert.Equal(["b", "c"], s.Leases.Keys.Order());
        Assert.Equal(3, s.LastLeaseId);
        s = s.Apply(new TaskRecorded(1, "b", 5, false, false, T0));
        Assert.Equal(["c"], s.Leases.Keys);
        // A lease of a task already done, or of another iteration, is not kept (its id still counts).
        s = s.Apply(new TaskLeased(1, "b", 4, "worker-3")).Apply(new TaskLeased(2, "x", 5, "worker-4"));
        Assert.Equal(["c"], s.Leases.Keys);
        Assert.Equal(5, s.LastLeaseId);
        Assert.Empty(s.WithoutJournaledLeases().Leases);
        Assert.Empty(s.Apply(new IterationStarted(2, 1, 3, T0)).Leases);
    }

    [Fact]
    public void Resumed_from_the_journal_is_the_state_the_live_events_made()
    {
        object[] journal =
        [
            new CampaignStarted(T0), Policy(0), new IterationEvaluated(Row(0)), new IterationStarted(1, 0, 2, T0),
            new TaskLeased(1, "a", 1, "w"), new TaskRecorded(1, "a", 4, true, false, T0), new TaskLeased(1, "b", 2, "w"),
            new TaskRecorded(1, "b", 6, false, false, T0), Policy(1), new IterationEvaluated(Row(1)), new CampaignFinished("completed", null),
        ];
        var live = CampaignState.Empty;
        foreach (var e in journal) live = live.Apply(e);
        var resumed = CampaignState.Recover(journal);
        Assert.Equal((live.Iteration, live.PolicyVersion, live.Nodes, live.SolvedTrees, live.LastLeaseId, live.Finished),
            (resumed.Iteration, resumed.PolicyVersion, resumed.Nodes, resumed.SolvedTrees, resumed.LastLeaseId, resumed.Finished));
        Assert.Equal(live.DoneTasks.Order(), resumed.DoneTasks.Order());
        Assert.Equal([0, 1], resumed.IterationRows.Select(r => r.Iteration));
        Assert.Equal(("completed", 1, 10, 1), (resumed.Finished!.Status, resumed.PolicyVersion, resumed.Nodes, resumed.SolvedTrees));
        // A campaign stopped before its first outcome resumes with nothing done and its lease journaled.
        var cut = CampaignState.Recover(journal.Take(5));
        Assert.Equal((0, 1), (cut.DoneTasks.Count, cut.Leases.Count));
    }

    [Fact]
    public void Evaluated_row_reads_the_iteration_from_the_journal_and_the_report_of_its_policy()
    {
        var s = InIteration1()
            .Apply(new TaskRecorded(1, "a", 7, true, false, T0.AddMinutes(2)))
            .Apply(new TaskRecorded(1, "b", 0, false, true, T0.AddMinutes(3)))
            .Apply(Policy(1));
        var throughput = new RoleThroughput(1, 2, 3, 0.5, 4, 5);
        var row = s.Row(new HeldOutResult(2, 4, 0.5), 61.26, 30.04, 2.0, throughput);
        Assert.Equal((1, "selfplay", 1, 3, 5), (row.Iteration, row.Phase, row.PolicyVersion, row.Trees, row.Pairs));
        Assert.Equal((7, 1, 1), (row.Nodes, row.SolvedTrees, row.FailedTasks));
        Assert.Equal((61.3, 30.0, 12.5, 2.0), (row.WallSeconds, row.SearchSeconds, row.TrainSeconds, row.EvalSeconds));
        Assert.Equal((0.7, 0.5, 0.8), (row.TrainLossFirst, row.TrainLossLast, row.RewardAccuracy));
        Assert.Same(throughput, row.Throughput);

        var warmup = CampaignState.Empty.Apply(Policy(0)).Row(null, 1, 0, 0, throughput);
        Assert.Equal(("sft", 0, (RoleThroughput?)null), (warmup.Phase, warmup.Trees, warmup.Throughput)); // the warm-up searched nothing
        Assert.Throws<InvalidOperationException>(() => CampaignState.Empty.Row(null, 0, 0, 0, null));
    }

    [Fact]
    public void Policy_loaded_goes_to_its_evaluation_then_to_the_search_it_started_or_the_next_iteration()
    {
        var published = CampaignState.Empty.Apply(Policy(0));
        Assert.Equal(CampaignStep.Evaluate, published.AfterLoad());
        var evaluated = published.Apply(new IterationEvaluated(Row(0)));
        Assert.Equal(CampaignStep.NextIteration, evaluated.AfterLoad());
        Assert.Equal(CampaignStep.Search, InIteration1().AfterLoad()); // resumed inside iteration 1

        var next = Assert.IsType<IterationStarted>(evaluated.NextIteration(iterations: 2, tasks: 5, T0));
        Assert.Equal((1, 0, 5, (DateTime?)T0), (next.Iteration, next.PolicyVersion, next.Tasks, next.AtUtc));
        var last = evaluated.Apply(Policy(2)).Apply(new IterationEvaluated(Row(2)));
        Assert.Equal(new CampaignFinished("completed", null), last.NextIteration(iterations: 2, tasks: 5, T0));
    }

    [Fact]
    public void Task_completed_is_recorded_once_and_only_with_this_iterations_tree()
    {
        var s = InIteration1();
        var recorded = s.Decide(new TaskCompleted("a", "c/1/a/0", 1, 9, true, 0.5), "c", T0);
        Assert.Equal(new TaskRecorded(1, "a", 9, true, false, T0), recorded);
        Assert.Null(s.Apply(recorded!).Decide(new TaskCompleted("a", "c/1/a/0", 2, 9, true, 0.5), "c", T0)); // a re-issued task's second answer
        Assert.Null(s.Decide(new TaskCompleted("a", "c/0/a/0", 1, 9, true, 0.5), "c", T0)); // a tree of another iteration
    }

    [Fact]
    public void Task_failed_backs_off_then_is_given_up_unless_the_failure_is_transient()
    {
        var s = InIteration1();
        var failed = new TaskFailed("a", 1, "environment threw");
        Assert.Equal((TimeSpan.FromSeconds(1), (TaskRecorded?)null), s.Decide(failed, attempts: 1, maxAttempts: 3, T0));
        Assert.Equal((TimeSpan.FromSeconds(2), (TaskRecorded?)null), s.Decide(failed, attempts: 2, maxAttempts: 3, T0));
        Assert.Equal(((TimeSpan?)null, new TaskRecorded(1, "a", 0, false, true, T0)), s.Decide(failed, attempts: 3, maxAttempts: 3, T0));
        Assert.Equal((TimeSpan.FromSeconds(10), (TaskRecorded?)null), s.Decide(failed with { Transient = true }, attempts: 9, maxAttempts: 3, T0));
    }

    [Fact]
    public void An_iteration_whose_every_task_failed_is_searched_again_on_resume()
    {
        var s = InIteration1();
        Assert.Null(s.SearchAgain(T0));
        foreach (var task in new[] { "a", "b", "c" }) s = s.Apply(new TaskRecorded(1, task, 0, false, true, T0));
        Assert.Equal(new IterationStarted(1, 0, 3, T0), s.SearchAgain(T0));
        Assert.Null(s.Apply(new TaskRecorded(1, "d", 0, false, true, T0)).Apply(new IterationStarted(1, 0, 3, T0)).SearchAgain(T0));
    }
}

using SelfPlay.Actors.Campaign;
using SelfPlay.Actors.Protocol;

namespace SelfPlay.Actors.Tests;

/// <summary>The coordinator's live leases, transition by transition, without an actor: workers are named by strings.</summary>
public class LeaseTableTests
{
    static readonly DateTime T0 = new(2026, 12, 7, 8, 0, 0, DateTimeKind.Utc);
    static readonly TimeSpan LeaseTime = TimeSpan.FromSeconds(30);

    static SearchTask Task(string id) => new(id, "c/it1/" + id, 1, "1 2 3 4", 0, 0, 7);

    static LeaseTable<string> WithTasks(params string[] ids)
    {
        var table = new LeaseTable<string>(LeaseTime);
        foreach (var id in ids) table.Enqueue(Task(id));
        return table;
    }

    [Fact]
    public void Task_leased_goes_to_the_idle_workers_in_order_with_counting_lease_ids()
    {
        var table = WithTasks("a", "b", "c");
        table.LastLeaseId = 41; // the journal's highest
        table.Idle("w1");
        table.Idle("w2");
        var leases = table.Dispatch(_ => true, T0);
        Assert.Equal([("a", "w1", 42L), ("b", "w2", 43L)], leases.Select(l => (l.Task.TaskId, l.Worker, l.Task.LeaseId)));
        Assert.All(leases, l => Assert.Equal(T0 + LeaseTime, l.Deadline));
        Assert.Equal((1, 2), (table.PendingCount, table.LeasedCount));
        Assert.Empty(table.Dispatch(_ => true, T0)); // nobody is idle
    }

    [Fact]
    public void A_task_completed_while_it_waits_in_the_queue_is_not_handed_out()
    {
        var table = WithTasks("a", "b", "c");
        table.Complete("b"); // its journaled worker reported it after all
        table.Idle("w1");
        table.Idle("w2");
        table.Idle("w3");
        Assert.Equal(["a", "c"], table.Dispatch(_ => true, T0).Select(l => l.Task.TaskId));
        Assert.Equal(0, table.PendingCount);
    }

    [Fact]
    public void A_worker_whose_node_lacks_the_policy_keeps_waiting_and_is_served_first_once_it_has_it()
    {
        var table = WithTasks("a", "b");
        table.Idle("old-node");
        table.Idle("new-node");
        Assert.Equal(["new-node"], table.Dispatch(w => w == "new-node", T0).Select(l => l.Worker));
        Assert.Equal(["old-node"], table.Dispatch(_ => true, T0).Select(l => l.Worker));
    }

    [Fact]
    public void A_busy_worker_asking_again_is_not_queued_twice()
    {
        var table = WithTasks("a", "b", "c");
        table.Idle("w1");
        table.Dispatch(_ => true, T0);
        table.Idle("w1"); // a periodic re-ask while it searches "a"
        Assert.Empty(table.Dispatch(_ => true, T0));
        table.Complete("a");
        table.Idle("w1");
        table.Idle("w1");
        Assert.Single(table.Dispatch(_ => true, T0));
    }

    [Fact]
    public void Task_failed_counts_attempts_and_ignores_a_late_report_of_an_earlier_lease()
    {
        var table = WithTasks("a");
        table.Idle("w1");
        var first = table.Dispatch(_ => true, T0).Single();
        Assert.Null(table.Fail("a", first.Task.LeaseId + 1)); // not the current lease
        var failure = table.Fail("a", first.Task.LeaseId);
        Assert.Equal(("a", 1), (failure!.Value.Task.TaskId, failure.Value.Attempts));
        Assert.Equal(0, table.LeasedCount);
        Assert.Null(table.Fail("a", first.Task.LeaseId)); // reported twice

        table.Enqueue(failure.Value.Task); // the retry
        table.Idle("w1");
        var second = table.Dispatch(_ => true, T0).Single();
        Assert.Equal(2, table.Fail("a", second.Task.LeaseId)!.Value.Attempts);
    }

    [Fact]
    public void Lease_expired_queues_the_task_again_and_the_hung_worker_is_not_idle()
    {
        var table = WithTasks("a", "b");
        table.Idle("w1");
        table.Idle("w2");
        table.Dispatch(_ => true, T0);
        Assert.Empty(table.Expire(T0 + LeaseTime)); // at the deadline, not past it
        table.Complete("b");
        table.Idle("w2");
        var expired = table.Expire(T0 + LeaseTime + TimeSpan.FromSeconds(1));
        Assert.Equal([("a", "w1")], expired.Select(l => (l.Task.TaskId, l.Worker)));
        Assert.Equal((1, 0), (table.PendingCount, table.LeasedCount));
        Assert.Equal(["w2"], table.Dispatch(_ => true, T0).Select(l => l.Worker)); // w1 hung: it is not handed the task back
    }

    [Fact]
    public void Worker_lost_releases_its_leases_at_once_and_an_unknown_worker_changes_nothing()
    {
        var table = WithTasks("a", "b");
        table.Idle("w1");
        table.Idle("w2");
        table.Dispatch(_ => true, T0);
        Assert.Null(table.Gone("stranger"));
        Assert.Equal(["a"], table.Gone("w1")!.Select(l => l.Task.TaskId));
        Assert.Equal((1, 1), (table.PendingCount, table.LeasedCount));
        Assert.Null(table.Gone("w1")); // already gone
        table.Complete("b");
        table.Idle("w2");
        Assert.Equal([("a", "w2")], table.Dispatch(_ => true, T0).Select(l => (l.Task.TaskId, l.Worker)));
    }

    [Fact]
    public void A_lease_held_from_the_journal_stays_with_its_worker_until_it_reports_or_is_lost()
    {
        var table = new LeaseTable<string>(LeaseTime);
        Assert.True(table.Know("w1"));
        Assert.False(table.Know("w1"));
        table.Hold(Task("a") with { LeaseId = 9 }, "w1", T0);
        table.Enqueue(Task("b"));
        table.Idle("w1"); // it still searches "a"
        Assert.Empty(table.Dispatch(_ => true, T0));
        Assert.Equal(("a", 1), (table.Fail("a", 9)!.Value.Task.TaskId, table.PendingCount));
    }

    [Fact]
    public void A_new_iteration_clears_tasks_leases_and_attempts_but_keeps_the_idle_workers()
    {
        var table = WithTasks("a", "b");
        table.Idle("w1");
        var lease = table.Dispatch(_ => true, T0).Single();
        table.Fail("a", lease.Task.LeaseId);
        table.Idle("w2");
        table.Clear();
        Assert.Equal((0, 0), (table.PendingCount, table.LeasedCount));
        table.Enqueue(Task("a"));
        var next = table.Dispatch(_ => true, T0).Single();
        Assert.Equal(1, table.Fail("a", next.Task.LeaseId)!.Value.Attempts); // attempts start again
    }
}

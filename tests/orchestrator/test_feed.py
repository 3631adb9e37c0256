"""The job screen's feed: events pile up between redraws and are drawn once each."""

from __future__ import annotations

from orchestrator import ItemRecord, JobRecord, JobSnapshot
from orchestrator.events import ItemCompleted, ItemFailed, ItemGenerated, ItemStarted
from orchestrator.feed import JobFeed
from orchestrator.records import AttemptRecord
from orchestrator.spec import JobConfig
from orchestrator.wording import pace_line

T0 = 1_700_000_000.0


def snapshot(count: int) -> JobSnapshot:
    job = JobRecord(id="j", config=JobConfig(key="k"), total=count, created_at=T0, updated_at=T0)
    items = [
        ItemRecord(job_id="j", id=f"i{n}", index=n, prompt=f"p{n}", created_at=T0, updated_at=T0)
        for n in range(count)
    ]
    return JobSnapshot(job=job, items=items, seq=10)


def test_a_burst_of_events_becomes_one_change_per_row_with_the_latest_state() -> None:
    feed = JobFeed("j")
    feed.load(snapshot(1000), now=T0)
    assert feed.take().reloaded
    seq = 10
    for n in range(1000):
        for event in (
            ItemStarted(
                seq=seq + 1, ts=T0 + 1, job_id="j", item_id=f"i{n}", status="running", attempt=1
            ),
            ItemGenerated(
                seq=seq + 2,
                ts=T0 + 1.5,
                job_id="j",
                item_id=f"i{n}",
                status="running",
                bytes=1,
                width=1,
                height=1,
                cost_usd=0.01,
            ),
            ItemCompleted(
                seq=seq + 3,
                ts=T0 + 2,
                job_id="j",
                item_id=f"i{n}",
                status="completed",
                image_path="x.png",
            ),
        ):
            feed.apply(event)
        seq += 3
    changes = feed.take()
    assert len(changes.rows) == 1000  # each row once, however many events it had
    assert {row.status for row in changes.rows} == {"completed"}
    assert changes.rows[0].latency_s == 0.5 and changes.rows[0].cost_usd == 0.01
    assert len(changes.lines) == 1000  # one "completed" line each; starts are left out
    assert feed.tally is not None and feed.tally.done == 1000
    assert feed.take().rows == []  # taken once


def test_events_the_snapshot_includes_are_not_counted_again() -> None:
    feed = JobFeed("j")
    feed.load(snapshot(2), now=T0)
    feed.take()
    old = ItemFailed(seq=5, ts=T0, job_id="j", item_id="i0", status="failed", kind="x", message="m")
    feed.apply(old)
    assert feed.take().rows == []
    new = ItemFailed(
        seq=11, ts=T0, job_id="j", item_id="i0", status="failed", kind="unavailable", message="boom"
    )
    feed.apply(new)
    (row,) = feed.take().rows
    assert row.status == "failed" and row.cells()[4] == "server error"


def test_an_attempt_in_flight_at_the_snapshot_gets_its_latency_when_it_ends() -> None:
    feed = JobFeed("j")
    base = snapshot(1)
    running = base.items[0].model_copy(
        update={"status": "running", "attempts": (AttemptRecord(number=1, started_at=T0),)}
    )
    feed.load(JobSnapshot(job=base.job, items=[running], seq=10), now=T0)
    feed.take()
    feed.apply(
        ItemGenerated(
            seq=11,
            ts=T0 + 2.5,
            job_id="j",
            item_id="i0",
            status="running",
            bytes=1,
            width=1,
            height=1,
        )
    )
    (row,) = feed.take().rows
    assert row.latency_s == 2.5


def test_a_page_says_what_it_waits_for_then_why_it_failed() -> None:
    feed = JobFeed("j")
    shot = snapshot(2)
    shot.items[1] = shot.items[1].model_copy(update={"depends_on": ("i0",)})
    feed.load(shot, now=T0)
    assert feed.rows["i1"].cells()[4] == "after i0" and feed.rows["i0"].cells()[4] == ""
    feed.apply(
        ItemFailed(
            seq=11,
            ts=T0 + 1,
            job_id="j",
            item_id="i1",
            status="failed",
            kind="reference",
            message="not attempted: the item it references, i0, failed",
        )
    )
    [row] = feed.take().rows
    assert row.cells()[4] == "reference failed"


def test_the_pace_line_shows_the_budget_when_the_job_has_one() -> None:
    shot = snapshot(2)
    limits = shot.job.config.limits.model_copy(update={"budget_usd": 1.0})
    config = shot.job.config.model_copy(update={"limits": limits})
    with_budget = JobSnapshot(
        job=shot.job.model_copy(update={"config": config}), items=shot.items, seq=10
    )
    feed = JobFeed("j")
    feed.load(with_budget, now=T0)
    assert feed.tally is not None
    assert pace_line(feed.tally, T0).endswith("cost $0.00 of a $1.00 budget")
    feed.load(shot, now=T0)
    assert feed.tally is not None and "budget" not in pace_line(feed.tally, T0)

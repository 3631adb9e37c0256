"""The runner's verbs: an item's way through its attempts, recovery at start, cancels that win
over whatever the runner does next, retries, and the end of a run. Fencing by the lease is in
test_journal_fencing.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from orchestrator.events import (
    ItemCancelled,
    ItemReset,
    ItemRetrying,
    ItemStarted,
    JobCancelRequested,
    JobFinished,
    JobInterrupted,
    JobStarted,
)
from orchestrator.journal import DiskJournal, RunJournal
from orchestrator.records import ItemRecord
from orchestrator.states import ItemStatus, JobStatus
from orchestrator.testing.clock import FakeClock

from .test_journal import BOOM, DONE, RAW, begin, state

STALE = 301.0
"""More than the locks' stale limit (300 s): a heartbeat this old is dead."""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def disk(tmp_path: Path, clock: FakeClock) -> Iterator[DiskJournal]:
    opened = DiskJournal(tmp_path / "journal", clock=clock)
    yield opened
    opened.close()


# -- an item's way ------------------------------------------------------------------------------


def test_an_item_goes_through_its_attempts(disk: DiskJournal) -> None:
    run = begin(disk)
    started = run.start_attempt("i0")
    assert isinstance(started, ItemRecord) and started.status == ItemStatus.RUNNING
    assert [a.outcome for a in started.attempts] == ["running"]
    waiting = run.retry_later("i0", BOOM, 2.5, retry_after=2.0)
    assert waiting.status == ItemStatus.PENDING and waiting.error == BOOM
    ended_at = waiting.attempts[-1].ended_at
    assert ended_at is not None
    assert waiting.retry_at == pytest.approx(ended_at + 2.5)
    assert (waiting.attempts[-1].outcome, waiting.attempts[-1].retry_after) == ("error", 2.0)
    again = run.start_attempt("i0")
    assert isinstance(again, ItemRecord) and again.retry_at is None
    assert [(a.number, a.retry) for a in again.attempts] == [(1, False), (2, True)]
    recorded = run.record_image("i0", RAW)
    assert recorded.status == ItemStatus.RUNNING  # paid and kept, not yet post-processed
    assert (recorded.raw_path, recorded.cost_usd, recorded.error) == ("raw/x.png", 0.04, None)
    assert recorded.attempts[-1].outcome == "ok"
    done = run.complete("i0", DONE)
    assert (done.status, done.image_path, done.finished_at is not None) == (
        ItemStatus.COMPLETED,
        "images/x.png",
        True,
    )
    kinds = [type(event).__name__ for event in disk.events(after=2)]
    assert kinds == [
        "ItemStarted",
        "ItemRetrying",
        "ItemStarted",
        "ItemGenerated",
        "ItemCompleted",
    ]
    assert disk.job(run.job_id).cost_usd == pytest.approx(0.04)


def test_start_attempt_on_an_item_not_pending_writes_nothing(disk: DiskJournal) -> None:
    run = begin(disk)
    run.start_attempt("i0")
    before = state(disk, run.job_id)
    assert run.start_attempt("i0") is None
    assert run.start_postprocess("i0") is None
    assert state(disk, run.job_id) == before
    item = disk.item(run.job_id, "i0")
    assert item.status == ItemStatus.RUNNING and item.attempt_count == 1


def test_start_postprocess_starts_no_attempt(disk: DiskJournal) -> None:
    run = begin(disk)
    started = run.start_postprocess("i1")
    assert started is not None and started.status == ItemStatus.RUNNING
    assert started.attempts == ()
    event = disk.events()[-1]
    assert isinstance(event, ItemStarted) and event.postprocess_only


# -- recovery at start --------------------------------------------------------------------------


def test_start_recovers_what_a_dead_runner_left_running(
    disk: DiskJournal, clock: FakeClock
) -> None:
    dead = begin(disk, count=4)
    for item_id in ("i0", "i1", "i2"):
        dead.start_attempt(item_id)
    dead.record_image("i2", RAW)  # paid: only post-processing is left
    disk.cancel_items(dead.job_id, ["i1"])  # the live runner was asked to stop it
    assert disk.item(dead.job_id, "i1").cancel_requested
    clock.advance(STALE)  # the runner dies; its lock goes stale
    lease = disk.locks.acquire(disk.job(dead.job_id).key, dead.job_id)
    snapshot = RunJournal(disk, dead.job_id, lease).start()

    items = {item.id: item for item in snapshot.items}
    assert items["i0"].status == ItemStatus.PENDING
    assert [a.outcome for a in items["i0"].attempts] == ["interrupted"]
    assert items["i1"].status == ItemStatus.CANCELLED and not items["i1"].cancel_requested
    assert [a.outcome for a in items["i1"].attempts] == ["cancelled"]
    assert items["i2"].status == ItemStatus.PENDING and items["i2"].raw_path == "raw/x.png"
    assert items["i3"].status == ItemStatus.PENDING and items["i3"].attempts == ()
    assert snapshot.job.status == JobStatus.RUNNING and snapshot.job.active
    assert snapshot.seq == disk.last_seq()
    started = disk.events()[-1]
    assert isinstance(started, JobStarted) and started.recovered == 2
    resets = [e for e in disk.events() if isinstance(e, ItemReset)]
    assert {(e.item_id, e.reason) for e in resets} == {("i0", "interrupted"), ("i2", "interrupted")}


# -- cancel wins --------------------------------------------------------------------------------


def test_after_a_job_cancel_no_attempt_starts(disk: DiskJournal) -> None:
    run = begin(disk)
    run.start_attempt("i0")
    job = disk.request_cancel(run.job_id)
    assert job.cancel_requested and job.cancelled  # a live runner stops i0
    assert disk.item(run.job_id, "i0").status == ItemStatus.RUNNING
    assert disk.item(run.job_id, "i1").status == ItemStatus.CANCELLED  # pending: at once
    assert run.start_attempt("i1") is None
    after = run.retry_later("i0", BOOM, 1.0, None)  # its attempt failed: no other one
    assert after.status == ItemStatus.CANCELLED and after.attempt_count == 1
    assert not any(isinstance(event, ItemRetrying) for event in disk.events())
    job = disk.job(run.job_id)
    assert job.status == JobStatus.CANCELLED and not job.cancel_requested


@pytest.mark.parametrize("verb", ["start_attempt", "start_postprocess"])
def test_an_item_back_in_pending_after_a_cancel_does_not_start(
    disk: DiskJournal, verb: str
) -> None:
    run = begin(disk)
    run.start_attempt("i0")
    disk.request_cancel(run.job_id)
    run.stop("i0", cancelled=False)  # an interrupt put it back to pending
    seq = disk.last_seq()
    assert getattr(run, verb)("i0") is None
    item = disk.item(run.job_id, "i0")
    assert item.status == ItemStatus.CANCELLED and item.attempt_count == 1
    assert [type(event) for event in disk.events(after=seq)] == [ItemCancelled]


def test_retry_later_of_an_item_asked_to_cancel_ends_it(disk: DiskJournal) -> None:
    run = begin(disk)
    run.start_attempt("i0")
    assert disk.cancel_items(run.job_id, ["i0"]) == ["i0"]
    after = run.retry_later("i0", BOOM, 1.0, None)
    assert after.status == ItemStatus.CANCELLED and after.attempt_count == 1
    assert not after.cancel_requested
    assert disk.item(run.job_id, "i1").status == ItemStatus.PENDING  # the others go on


def test_a_cancel_while_the_runner_looks_dead_is_not_undone(
    disk: DiskJournal, clock: FakeClock
) -> None:
    # The runner still holds its lease, but its heartbeat is stale: the cancel happens at once.
    run = begin(disk)
    run.start_attempt("i0")
    clock.advance(STALE)
    disk.cancel_items(run.job_id, ["i0"])
    item = disk.item(run.job_id, "i0")
    assert item.status == ItemStatus.CANCELLED
    assert [a.outcome for a in item.attempts] == ["cancelled"]  # not left open
    seq = disk.last_seq()
    assert run.retry_later("i0", BOOM, 1.0, None).status == ItemStatus.CANCELLED
    assert run.start_attempt("i0") is None
    assert run.fail("i0", BOOM) is None
    assert disk.last_seq() == seq
    assert disk.item(run.job_id, "i0") == item


# -- requests -----------------------------------------------------------------------------------


def test_cancel_items_under_a_live_runner(disk: DiskJournal) -> None:
    run = begin(disk, count=4)
    run.start_attempt("i1")
    run.start_attempt("i2")
    run.record_image("i2", RAW)
    run.complete("i2", DONE)
    asked = disk.cancel_items(run.job_id, ["i0", "i1", "i2"])
    assert asked == ["i0", "i1"]  # i2 was finished: left as it is
    items = {item.id: item for item in disk.items(run.job_id)}
    assert items["i0"].status == ItemStatus.CANCELLED
    assert items["i1"].status == ItemStatus.RUNNING and items["i1"].cancel_requested
    assert items["i2"].status == ItemStatus.COMPLETED
    assert items["i3"].status == ItemStatus.PENDING and not items["i3"].cancel_requested
    request = disk.events()[-1]
    assert isinstance(request, JobCancelRequested) and request.item_ids == ("i0", "i1")
    stopped = run.stop("i1", cancelled=True)
    assert stopped is not None and stopped.status == ItemStatus.CANCELLED
    assert not stopped.cancel_requested


def test_cancel_items_with_no_live_runner_cancels_running_ones_at_once(
    disk: DiskJournal,
) -> None:
    run = begin(disk)
    run.start_attempt("i0")
    disk.locks.release(run.lease)
    assert disk.cancel_items(run.job_id, ["i0"]) == ["i0"]
    item = disk.item(run.job_id, "i0")
    assert item.status == ItemStatus.CANCELLED and not item.cancel_requested
    assert [a.outcome for a in item.attempts] == ["cancelled"]


def test_request_cancel_with_no_live_runner_cancels_everything_unfinished(
    disk: DiskJournal,
) -> None:
    run = begin(disk)
    run.start_attempt("i0")
    run.finish(1.0, interrupted=True)
    disk.locks.release(run.lease)
    job = disk.request_cancel(run.job_id)
    assert job.status == JobStatus.CANCELLED and not job.cancel_requested
    assert job.counts == {ItemStatus.CANCELLED: 3}
    assert [a.outcome for a in disk.item(run.job_id, "i0").attempts] == ["cancelled"]
    seq = disk.last_seq()
    assert disk.request_cancel(run.job_id) == job  # finished: nothing more to do
    assert disk.last_seq() == seq


def test_request_retry_puts_failed_and_cancelled_items_back(disk: DiskJournal) -> None:
    run = begin(disk, count=4)
    run.start_attempt("i0")
    run.fail("i0", BOOM)
    run.start_attempt("i3")
    run.record_image("i3", RAW)
    run.complete("i3", DONE)
    disk.request_cancel(run.job_id)  # i1 and i2 are cancelled at once
    assert disk.job(run.job_id).status == JobStatus.CANCELLED
    assert disk.request_retry(run.job_id) == ["i0", "i1", "i2"]
    job = disk.job(run.job_id)
    assert not job.cancelled and not job.cancel_requested
    assert job.status == JobStatus.RUNNING  # the runner is still there and takes them
    items = {item.id: item for item in disk.items(run.job_id)}
    assert items["i0"].status == ItemStatus.PENDING and items["i0"].error is None
    assert items["i0"].attempts_before_retry == 1
    assert items["i1"].attempts_before_retry == 0
    assert items["i3"].status == ItemStatus.COMPLETED
    resets = [e for e in disk.events() if isinstance(e, ItemReset)]
    assert [(e.item_id, e.reason) for e in resets] == [(i, "retry") for i in ("i0", "i1", "i2")]
    again = run.start_attempt("i0")
    assert isinstance(again, ItemRecord) and again.attempts[-1].number == 2
    assert not again.attempts[-1].retry  # an explicit retry, not an automatic one


def test_request_retry_refuses_items_that_did_not_fail(disk: DiskJournal) -> None:
    run = begin(disk)
    before = state(disk, run.job_id)
    with pytest.raises(ConfigError, match="only failed or cancelled"):
        disk.request_retry(run.job_id, ["i0"])
    assert state(disk, run.job_id) == before
    assert disk.request_retry(run.job_id) == []  # none failed: nothing to do


# -- the end of a run ---------------------------------------------------------------------------


def test_finish_waits_while_items_are_pending(disk: DiskJournal) -> None:
    run = begin(disk, count=2)
    run.start_attempt("i0")
    run.fail("i0", BOOM)
    before = state(disk, run.job_id)
    assert run.finish(1.0, interrupted=False) is None  # i1 was never started
    assert state(disk, run.job_id) == before
    run.start_attempt("i1")
    run.record_image("i1", RAW)
    run.complete("i1", DONE)
    job = run.finish(2.5, interrupted=False)
    assert job is not None and not job.active
    assert job.status == JobStatus.PARTIAL and job.run_s == pytest.approx(2.5)
    finished = disk.events()[-1]
    assert isinstance(finished, JobFinished)
    assert finished.counts == {"failed": 1, "completed": 1}


def test_an_interrupted_run_leaves_the_job_resumable(disk: DiskJournal) -> None:
    run = begin(disk, count=2)
    run.start_attempt("i0")
    assert run.stop("i0", cancelled=False) is not None
    assert run.stop("i0", cancelled=False) is None  # no longer running: nothing to stop
    job = run.finish(3.0, interrupted=True, reason="lease_lost")
    assert job is not None and job.status == JobStatus.PENDING and not job.active
    event = disk.events()[-1]
    assert isinstance(event, JobInterrupted) and event.reason == "lease_lost"
    assert event.run_s == pytest.approx(3.0)
    assert [a.outcome for a in disk.item(run.job_id, "i0").attempts] == ["interrupted"]

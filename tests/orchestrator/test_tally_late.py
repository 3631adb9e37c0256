"""A tally made while a job runs (a watcher coming in late, the TUI opening a running job)
takes the run's start and its completions so far from the records: the elapsed time, the pace
and the time left are the run's from the first moment, not the watcher's."""

from __future__ import annotations

import io

from orchestrator import ItemRecord, JobRecord
from orchestrator.events import ItemCompleted, JobStarted
from orchestrator.states import ItemStatus
from orchestrator.tally import Tally

from .records_builder import T0, item_record, job_record

RUN = T0 + 100.0
"""When the job's current run started (an earlier run ended before it)."""


def _item(n: int, status: ItemStatus, finished_at: float | None = None) -> ItemRecord:
    return item_record(n, status=status, finished_at=finished_at)


def _job(*, active: bool) -> JobRecord:
    return job_record(6, updated_at=RUN, active=active, run_started_at=RUN)


ITEMS = [
    _item(0, ItemStatus.COMPLETED, T0 + 50),  # in the earlier run: not this run's pace
    _item(1, ItemStatus.COMPLETED, RUN + 10),
    _item(2, ItemStatus.COMPLETED, RUN + 20),
    _item(3, ItemStatus.COMPLETED, RUN + 30),
    _item(4, ItemStatus.PENDING),
    _item(5, ItemStatus.PENDING),
]


def test_a_late_watcher_sees_the_run_s_elapsed_time_pace_and_time_left_at_once() -> None:
    now = RUN + 60.0
    tally = Tally.from_snapshot(_job(active=True), ITEMS, now=now)
    assert tally.since == RUN  # elapsed: 60 s, not 0
    assert tally.images_per_minute(now) == 3.0  # three images in this run's minute
    assert tally.eta_s(now) == 40.0  # two left at 3 a minute
    tally.apply(
        ItemCompleted(
            seq=1, ts=now, job_id="j", item_id="i4", status="completed", image_path="x.png"
        )
    )
    assert tally.images_per_minute(now) == 4.0  # the events after the snapshot add to them


def test_a_job_that_does_not_run_is_timed_from_when_it_is_watched() -> None:
    now = RUN + 60.0
    tally = Tally.from_snapshot(_job(active=False), ITEMS, now=now)
    assert tally.since == now and tally.images_per_minute(now) is None


def test_the_cli_pace_line_of_a_job_done_before_it_was_followed_says_so() -> None:
    """`watch` of a job that ended: nothing completed while it followed, and nothing is
    pending either (it said "first image pending")."""
    from orchestrator.cli.display import JobDisplay

    now = RUN + 60.0
    done = [_item(n, ItemStatus.COMPLETED, RUN + n) for n in range(6)]
    ended = Tally.from_snapshot(_job(active=False), done, now=now)
    line = JobDisplay(ended, io.StringIO(), live=False, now=lambda: now).pace_line(now)
    assert line.startswith("all done · ")
    waiting = Tally.from_snapshot(_job(active=False), ITEMS, now=now)
    line = JobDisplay(waiting, io.StringIO(), live=False, now=lambda: now).pace_line(now)
    assert line.startswith("first image pending · ")


def test_a_run_that_starts_while_it_is_watched_is_timed_from_its_start() -> None:
    """A retry or a resume after the job ended: the new run's pace, not one spread over the
    idle time before it (nor, for a job whose process died, over the dead run's)."""
    now = RUN + 600.0
    tally = Tally.from_snapshot(_job(active=True), ITEMS, now=now)  # its process died at RUN
    assert tally.since == RUN
    tally.apply(JobStarted(seq=1, ts=now, job_id="j", status="running"))
    assert tally.since == now and tally.images_per_minute(now + 30) is None
    tally.apply(
        ItemCompleted(
            seq=2, ts=now + 30, job_id="j", item_id="i4", status="completed", image_path="x"
        )
    )
    assert tally.images_per_minute(now + 30) == 2.0


def test_a_job_whose_run_stopped_unfinished_says_so_instead_of_an_unknown_eta() -> None:
    """The TUI and the notebook opening an interrupted job said `ETA -`, as if one were
    coming; nothing runs it, so they say it stopped. A job never run yet is not "stopped"."""
    from orchestrator.wording import pace_line

    now = RUN + 60.0
    stopped = Tally.from_snapshot(_job(active=False), ITEMS, now=now)
    assert stopped.finished
    assert "stopped: resume to go on" in pace_line(stopped, now)
    assert "ETA" not in pace_line(stopped, now)
    never_run = job_record(6, updated_at=RUN, active=False, run_started_at=None)
    waiting = Tally.from_snapshot(never_run, ITEMS, now=now)
    assert not waiting.finished and "stopped" not in pace_line(waiting, now)

"""Fencing: once a runner's lock is taken over or cleared, every verb it still calls with its old
lease raises `LeaseLostError` and writes nothing, while the new owner goes on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import LeaseLostError
from orchestrator.journal import DiskJournal, RunJournal
from orchestrator.states import ItemStatus
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


Verb = Callable[[RunJournal], Any]
VERBS: dict[str, Verb] = {
    "start": lambda run: run.start(),
    "start_attempt": lambda run: run.start_attempt("i2"),
    "start_postprocess": lambda run: run.start_postprocess("i2"),
    "record_image": lambda run: run.record_image("i0", RAW),
    "complete": lambda run: run.complete("i1", DONE),
    "retry_later": lambda run: run.retry_later("i0", BOOM, 1.0, None),
    "fail": lambda run: run.fail("i0", BOOM),
    "stop": lambda run: run.stop("i0", cancelled=False),
    "finish": lambda run: run.finish(1.0, interrupted=True),
}


def _take_over(disk: DiskJournal, clock: FakeClock, how: str, key: str, tmp_path: Path) -> str:
    """Take `key`'s lock away from its runner, as another process would; what it then says."""
    if how == "cleared":
        disk.locks.clear(key)
        return "was cleared"
    clock.advance(STALE)
    other = DiskJournal(tmp_path / "journal", clock=clock)
    try:
        other.locks.acquire(key, "job-new")
    finally:
        other.close()
    return "taken over by job job-new"


@pytest.mark.parametrize("how", ["stale", "cleared"])
@pytest.mark.parametrize("verb", list(VERBS))
def test_a_runner_that_lost_its_lease_writes_nothing(
    disk: DiskJournal, clock: FakeClock, tmp_path: Path, verb: str, how: str
) -> None:
    run = begin(disk)
    run.start_attempt("i0")
    run.start_attempt("i1")
    run.record_image("i1", RAW)
    said = _take_over(disk, clock, how, disk.job(run.job_id).key, tmp_path)
    before = state(disk, run.job_id)
    with pytest.raises(LeaseLostError, match=said) as raised:
        VERBS[verb](run)
    assert (raised.value.exit_code, raised.value.job_id) == (6, run.job_id)
    assert state(disk, run.job_id) == before


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_verb_writes_while_the_lease_holds(disk: DiskJournal, verb: str) -> None:
    # The other half of the fencing test: the same call does write when nothing was taken.
    run = begin(disk)
    run.start_attempt("i0")
    run.start_attempt("i1")
    run.record_image("i1", RAW)
    seq = disk.last_seq()
    VERBS[verb](run)
    assert disk.last_seq() > seq


def test_the_new_owner_runs_on_while_the_old_one_is_refused(
    disk: DiskJournal, clock: FakeClock
) -> None:
    old = begin(disk)
    old.start_attempt("i0")
    clock.advance(STALE)
    lease = disk.locks.acquire(disk.job(old.job_id).key, old.job_id)
    new = RunJournal(disk, old.job_id, lease)
    new.start()
    assert new.start_attempt("i0") is not None
    with pytest.raises(LeaseLostError):
        old.stop("i0", cancelled=False)  # would reset the new owner's running item
    assert disk.item(old.job_id, "i0").status == ItemStatus.RUNNING
    assert new.complete("i0", DONE).status == ItemStatus.COMPLETED

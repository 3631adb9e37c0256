"""An image whose processing kills the process is not tried forever: each run that dies with it
in flight counts against it, and the third ends it `failed` ("crash loop"), until a retry."""

from __future__ import annotations

from pathlib import Path

from orchestrator.journal import DiskJournal, RunJournal
from orchestrator.spec import parse_spec
from orchestrator.states import ItemStatus
from orchestrator.testing.clock import FakeClock

from .test_journal import make_spec as make_journal_spec


def _die_with_in_flight(disk: DiskJournal, job_id: str, key: str, item_ids: list[str]) -> None:
    """A run takes the lock, starts these items, and its process dies."""
    lease = disk.locks.acquire(key, job_id)
    run = RunJournal(disk, job_id, lease)
    run.start()
    for item_id in item_ids:
        assert run.start_attempt(item_id) is not None


def test_the_third_death_with_an_item_in_flight_fails_it(tmp_path: Path) -> None:
    clock = FakeClock()
    disk = DiskJournal(tmp_path / "journal", clock=clock)
    job, _ = disk.create_job(parse_spec(make_journal_spec("k", 3).model_dump(), "t"))
    try:
        _die_with_in_flight(disk, job.id, job.key, ["i0", "i1"])
        for _ in range(2):
            clock.advance(301.0)  # the dead run's lock goes stale
            _die_with_in_flight(disk, job.id, job.key, ["i0"])
        clock.advance(301.0)
        lease = disk.locks.acquire(job.key, job.id)
        snapshot = RunJournal(disk, job.id, lease).start()
        items = {item.id: item for item in snapshot.items}
        poison, bystander = items["i0"], items["i1"]
        assert poison.status == ItemStatus.FAILED and poison.crashes == 3
        assert poison.error is not None and poison.error.kind == "crash_loop"
        assert poison.error.message.startswith("the process died 3 times while this image")
        assert [a.outcome for a in poison.attempts] == ["interrupted", "interrupted", "error"]
        assert bystander.status == ItemStatus.PENDING and bystander.crashes == 1
        disk.locks.release(lease)
        # a retry gives it a clean slate
        assert disk.request_retry(job.id, ["i0"]) == ["i0"]
        again = disk.item(job.id, "i0")
        assert again.status == ItemStatus.PENDING and again.crashes == 0
    finally:
        disk.close()


def test_a_death_while_the_run_was_stopping_does_not_count_against_its_images(
    tmp_path: Path,
) -> None:
    """A service manager's SIGKILL after its SIGTERM (the run was letting its requests finish)
    is the stop's doing, not the images': three of those must not fail an image."""
    clock = FakeClock()
    disk = DiskJournal(tmp_path / "journal", clock=clock)
    job, _ = disk.create_job(parse_spec(make_journal_spec("k", 2).model_dump(), "t"))
    try:
        for _ in range(3):
            lease = disk.locks.acquire(job.key, job.id)
            run = RunJournal(disk, job.id, lease)
            run.start()
            assert run.start_attempt("i0") is not None
            assert run.record_stopping().stopping  # the wind-down began; then the kill
            clock.advance(301.0)
        lease = disk.locks.acquire(job.key, job.id)
        snapshot = RunJournal(disk, job.id, lease).start()
        item = next(item for item in snapshot.items if item.id == "i0")
        assert item.status == ItemStatus.PENDING and item.crashes == 0
        assert [a.outcome for a in item.attempts] == ["interrupted"] * 3
        assert not snapshot.job.stopping  # the new run is not stopping
    finally:
        disk.close()

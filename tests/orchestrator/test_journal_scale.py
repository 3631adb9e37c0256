"""What the journal's size must not change: the writes a commit makes, and the consistency of a
read taken while another thread commits (issue 7: no torn reads)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.journal import DiskJournal, RunJournal

from .test_journal import BOOM, DONE, RAW, make_spec

Step = tuple[str, Callable[[DiskJournal, RunJournal], object]]
STEPS: list[Step] = [
    ("start", lambda disk, run: run.start()),
    ("start_attempt", lambda disk, run: run.start_attempt("i0")),
    ("record_image", lambda disk, run: run.record_image("i0", RAW)),
    ("complete", lambda disk, run: run.complete("i0", DONE)),
    ("start_attempt 2", lambda disk, run: run.start_attempt("i1")),
    ("retry_later", lambda disk, run: run.retry_later("i1", BOOM, 1.0, None)),
    ("start_attempt 3", lambda disk, run: run.start_attempt("i1")),
    ("fail", lambda disk, run: run.fail("i1", BOOM)),
    ("request_retry", lambda disk, run: disk.request_retry(run.job_id, ["i1"])),
    ("start_postprocess", lambda disk, run: run.start_postprocess("i1")),
    ("stop", lambda disk, run: run.stop("i1", cancelled=False)),
    ("cancel_items", lambda disk, run: disk.cancel_items(run.job_id, ["i2"])),
    ("finish", lambda disk, run: run.finish(1.0, interrupted=True)),
]


class Counting:
    """Counts the SQL statements the store runs that write and that read, and the bytes of
    the writes (statements as SQLite expands them, with their values)."""

    def __init__(self, disk: DiskJournal, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sets = self.gets = self.written = 0

        def seen(statement: str) -> None:
            verb = statement.lstrip().split(" ", 1)[0].upper()
            if verb in ("INSERT", "UPDATE", "DELETE"):
                self.sets += 1
                self.written += len(statement)
            elif verb == "SELECT":
                self.gets += 1

        disk.store.trace(seen)

    def take(self) -> tuple[int, int, int]:
        taken = (self.sets, self.gets, self.written)
        self.sets = self.gets = self.written = 0
        return taken


def _costs(directory: Path, count: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Per verb: (writes, reads, bytes written) on a job of `count` items."""
    disk = DiskJournal(directory)
    try:
        job, lease = disk.create_job(make_spec(count=count), lock=True)
        assert lease is not None
        run = RunJournal(disk, job.id, lease)
        counting = Counting(disk, monkeypatch)
        costs: dict[str, Any] = {}
        for name, step in STEPS:
            step(disk, run)
            costs[name] = counting.take()
        monkeypatch.undo()
        return costs
    finally:
        disk.close()


def test_a_commit_costs_the_same_at_10_and_5000_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = _costs(tmp_path / "small", 10, monkeypatch)
    large = _costs(tmp_path / "large", 5000, monkeypatch)
    for name, _ in STEPS:
        (small_sets, small_gets, small_bytes), (large_sets, large_gets, large_bytes) = (
            small[name],
            large[name],
        )
        assert small_sets == large_sets, name
        assert 0 < small_sets <= 6, (name, small_sets)  # job, items changed, events, seq
        if name != "start":  # start reads every item to find those a dead runner left running
            assert small_gets == large_gets, name
        # The counts in the job header have more digits; nothing else may grow with the job.
        assert abs(large_bytes - small_bytes) <= 40, (name, small_bytes, large_bytes)


@pytest.mark.parametrize("second", [False, True], ids=["same-journal", "second-journal"])
def test_a_snapshot_is_never_torn_by_a_concurrent_writer(tmp_path: Path, second: bool) -> None:
    disk = DiskJournal(tmp_path / "journal")
    reader = DiskJournal(tmp_path / "journal") if second else disk
    job, _ = disk.create_job(make_spec(count=40))
    ids = [f"i{n}" for n in range(0, 40, 2)]
    stop = threading.Event()
    errors: list[BaseException] = []
    commits = 0

    def flip() -> None:  # every commit moves one item, so the counts change each time
        nonlocal commits
        try:
            while not stop.is_set():
                for item_id in ids:
                    disk.cancel_items(job.id, [item_id])
                    commits += 1
                for item_id in ids:
                    disk.request_retry(job.id, [item_id])
                    commits += 1
        except BaseException as error:
            errors.append(error)
        finally:
            disk.close()  # this thread's connection

    writer = threading.Thread(target=flip, name="flipper")
    writer.start()
    torn: list[tuple[dict[str, int], dict[str, int]]] = []
    seen: set[int] = set()
    reads, deadline = 0, time.monotonic() + 30
    try:  # 300 reads at least, and on until the writer has committed often (fsync: on a busy
        # disk, a commit can take longer than a few reads)
        while reads < 300 or (commits <= 50 and time.monotonic() < deadline):
            reads += 1
            snapshot = reader.snapshot(job.id)
            counted = Counter(str(item.status) for item in snapshot.items)
            recorded = {str(status): n for status, n in snapshot.job.counts.items()}
            seen.add(counted["cancelled"])
            if dict(counted) != recorded:
                torn.append((recorded, dict(counted)))
    finally:
        stop.set()
        writer.join(timeout=30)
        if second:
            reader.close()
        disk.close()
    assert not errors
    assert commits > 50 and len(seen) > 3, "the writer did not race the reads"
    assert not torn, f"{len(torn)} of {reads} snapshots torn, first: {torn[0]}"

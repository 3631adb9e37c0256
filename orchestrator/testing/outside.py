"""A workspace read from outside the process that runs its job, and bounded waits for it: what
tests and trials that drive `imagebatch` as real processes check it with.

```python
proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "--workspace", ws, "run", spec])
job_id = wait_for("the job to be recorded", lambda: only_job_id(ws), proc)
assert integrity(ws) == "ok"
```

Every wait is bounded and polls; none asserts how long anything took.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..events import Event
from ..journal import DiskJournal
from ..records import ItemRecord, JobRecord

__all__ = [
    "events",
    "integrity",
    "items",
    "job",
    "journal_at",
    "only_job_id",
    "reaped",
    "wait_for",
]


@contextlib.contextmanager
def journal_at(ws: Path) -> Iterator[DiskJournal]:
    """The workspace's journal, opened for reading beside whoever writes it."""
    journal = DiskJournal(ws / "journal")
    try:
        yield journal
    finally:
        journal.close()


def items(ws: Path, job_id: str) -> list[ItemRecord]:
    with journal_at(ws) as journal:
        return journal.items(job_id)


def job(ws: Path, job_id: str) -> JobRecord:
    with journal_at(ws) as journal:
        return journal.job(job_id)


def events(ws: Path, job_id: str) -> list[Event]:
    with journal_at(ws) as journal:
        return journal.events(after=0, job_id=job_id)


def only_job_id(ws: Path) -> str | None:
    """The id of the workspace's only job, once a running process has recorded it."""
    if not (ws / "journal").is_dir():
        return None
    with journal_at(ws) as journal:
        jobs = journal.jobs()
    return jobs[0].id if jobs else None


def integrity(ws: Path) -> str:
    """SQLite's own integrity check of the journal: `ok` when intact."""
    database = sqlite3.connect(ws / "journal" / "journal.sqlite3")
    try:
        return str(database.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        database.close()


def wait_for(
    what: str,
    condition: Callable[[], Any],
    proc: subprocess.Popen[Any] | None = None,
    *,
    limit_s: float = 30.0,
    every_s: float = 0.05,
) -> Any:
    """Poll `condition` until it returns something truthy and return that; `AssertionError`
    naming `what` after `limit_s`, or as soon as `proc` has ended."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (code {proc.returncode}) before {what}")
        time.sleep(every_s)
    raise AssertionError(f"gave up waiting for {what}")


@contextlib.contextmanager
def reaped(
    proc: subprocess.Popen[str], *, limit_s: float = 60.0
) -> Iterator[subprocess.Popen[str]]:
    """`proc`, killed if the caller leaves before it ended: no process outlives a test."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=limit_s)

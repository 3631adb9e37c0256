"""A full disk under the workspace: the run stops at once with `DiskFullError` (no more paid
requests whose images could not be kept), nothing is marked failed for it, and the job resumes
once there is room, paying again only for the images that were in flight. (A run in process
whose writes fill up, and a journal that cannot grow, are in `test_unwritable.py`, with the
other ways a workspace stops taking writes.)"""

from __future__ import annotations

import contextlib
import errno
import functools
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import orchestrator.storage as storage
from orchestrator.errors import DiskFullError
from orchestrator.journal import DiskJournal
from orchestrator.storage import atomic_write

from ..cli_helpers import cli, only_job_id, write_spec

ENOSPC = OSError(errno.ENOSPC, "No space left on device")


def test_a_write_on_a_full_disk_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: Any, **kwargs: Any) -> Any:
        raise ENOSPC

    monkeypatch.setattr(storage, "open", full, raising=False)
    with pytest.raises(DiskFullError) as raised:
        atomic_write(tmp_path / "images" / "a.png", b"x", root=tmp_path)
    assert str(raised.value) == (
        f"the disk holding {tmp_path} is full (No space left on device); free some space"
    )
    assert raised.value.exit_code == 7
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.fixture
def tiny_disk() -> Iterator[Path]:
    """A 3 MB tmpfs, mounted for the test. Needs root (CAP_SYS_ADMIN); skipped, saying so,
    without it."""
    folder = Path("/tmp") / f"ib-full-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        mounted = (
            shutil.which("mount") is not None
            and not subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=3M", "tmpfs", str(folder)], capture_output=True
            ).returncode
        )
        if not mounted:
            pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN)")
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_program_on_a_really_full_disk(tmp_path: Path, tiny_disk: Path) -> None:
    """`imagebatch run` on a 3 MB tmpfs: one line and exit 7 when it fills, then `resume`
    completes the job once the file system has room."""
    spec = write_spec(
        tmp_path,
        items=30,
        options={"seed": 4, "latency_mean_s": 0, "latency_distribution": "fixed"},
        defaults={"size": "1024x1024"},
    )
    ws = tiny_disk / "ws"
    done = cli(ws, "run", str(spec), "--no-progress")
    assert done.returncode == 7, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    job = only_job_id(ws)
    assert last == (
        f"imagebatch: error: the disk holding {ws} is full ({_said(last)}); free some space, "
        f"then `imagebatch resume {job}` continues the job"
    )
    assert "Traceback" not in done.stderr
    assert job is not None
    subprocess.run(["mount", "-o", "remount,size=80M", str(tiny_disk)], check=True)
    resumed = cli(ws, "resume", job, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "30 completed" in resumed.stdout


def test_the_program_on_a_disk_already_full(tmp_path: Path, tiny_disk: Path) -> None:
    """A disk with no room before the journal is made: one line and exit 7. Before, SQLite's
    "database or disk is full" came out of the journal's first connection as a traceback."""
    with (tiny_disk / "filler").open("wb") as filler, contextlib.suppress(OSError):
        while True:
            filler.write(bytes(64 * 1024))
    ws = tiny_disk / "ws"
    done = cli(ws, "run", str(write_spec(tmp_path, items=3)), "--no-progress")
    assert done.returncode == 7, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"imagebatch: error: the disk holding {ws} is full ({_said(done.stderr)}); free some space"
    ]


def test_a_journal_opened_on_a_full_disk_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening the journal makes its write-ahead log: on a full disk SQLite refuses that with
    SQLITE_FULL, which is a `DiskFullError` too."""

    class NoRoomForTheLog(sqlite3.Connection):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql.startswith("PRAGMA journal_mode"):
                error = sqlite3.OperationalError("database or disk is full")
                error.sqlite_errorcode = sqlite3.SQLITE_FULL
                raise error
            return super().execute(sql, *args)

    connect = functools.partial(sqlite3.connect, factory=NoRoomForTheLog)
    monkeypatch.setattr(sqlite3, "connect", connect)
    with pytest.raises(DiskFullError, match="is full"):
        DiskJournal(tmp_path / "journal")


def _said(line: str) -> str:
    """What the system said (the disk may fill at an image or at the journal)."""
    return line.split(" is full (", 1)[1].split("); free", 1)[0]

"""A full disk under the workspace: the run stops at once with `DiskFullError` (no more paid
requests whose images could not be kept), nothing is marked failed for it, and the job resumes
once there is room, paying again only for the images that were in flight."""

from __future__ import annotations

import errno
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

import orchestrator.storage as storage
from orchestrator.errors import DiskFullError
from orchestrator.journal import DiskJournal, RunJournal
from orchestrator.states import ItemStatus, JobStatus
from orchestrator.storage import atomic_write
from orchestrator.testing.scripted import ScriptedProvider, make_spec

from ..cli_helpers import cli, only_job_id, write_spec
from .conftest import MakeOrchestrator

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


def test_a_journal_that_cannot_grow_raises_disk_full_and_stays_usable(tmp_path: Path) -> None:
    """SQLite answers SQLITE_FULL when its file cannot grow (here: `max_page_count`, as a full
    disk does). The verb raises `DiskFullError`, its transaction is rolled back, and the same
    connection writes again once there is room."""
    journal = DiskJournal(tmp_path / "journal")
    try:
        job, lease = journal.create_job(make_spec(40), lock=True)
        assert lease is not None
        run = RunJournal(journal, job.id, lease)
        run.start()
        pages = journal.store.execute("PRAGMA page_count").fetchone()[0]
        journal.store.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(DiskFullError, match="is full"):
            for n in range(40):  # every attempt adds an event: the file must grow
                run.start_attempt(f"i{n}")
        journal.store.execute("PRAGMA max_page_count = 1000000")
        assert run.start_attempt("i39") is not None  # the connection is not left in a transaction
    finally:
        journal.close()


async def test_a_run_stops_when_the_disk_fills_and_resumes_once_there_is_room(
    make_orchestrator: MakeOrchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = open
    room = {"files": 3 * 4}  # raw, processed and thumbnail of four images

    def filling(path: Any, *args: Any, **kwargs: Any) -> Any:
        if room["files"] <= 0:
            raise ENOSPC
        room["files"] -= 1
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(storage, "open", filling, raising=False)
    provider = ScriptedProvider()
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(12, concurrency=2))
    with pytest.raises(DiskFullError):
        await job.wait()
    stopped = await job.status()
    items = await job.items()
    assert stopped.status == JobStatus.RUNNING and not stopped.active  # interrupted, resumable
    assert not [item for item in items if item.status == ItemStatus.FAILED]
    # room for twelve files: four images, or three when two slots' files interleave
    assert stopped.count(ItemStatus.COMPLETED) in (3, 4)
    # Four images whole; or a fifth's raw image too, when both slots wrote one just before
    # the refusals began (its post-processing, refused, waits for the resume). Then each slot
    # paid for one more image that could not be kept.
    assert len(provider.calls) <= 4 + 1 + 2, "at most the slots' images in flight paid in vain"

    monkeypatch.setattr(storage, "open", real_open, raising=False)  # room again
    resumed = await orch.start(job.id)
    assert (await resumed.wait()).status == JobStatus.COMPLETED
    assert len(provider.calls) <= 12 + 2, "no image that was kept is paid for twice"


def _mount_tiny(folder: Path) -> bool:
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3M", "tmpfs", str(folder)], capture_output=True
    )
    return done.returncode == 0


def test_the_program_on_a_really_full_disk(tmp_path: Path) -> None:
    """`imagebatch run` on a 3 MB tmpfs: one line and exit 7 when it fills, then `resume`
    completes the job once the file system has room. Needs a tmpfs mount (root)."""
    folder = Path("/tmp") / f"ib-full-{uuid.uuid4().hex[:8]}"
    if shutil.which("mount") is None or not _mount_tiny(folder):
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        spec = write_spec(
            tmp_path,
            items=30,
            options={"seed": 4, "latency_mean_s": 0, "latency_distribution": "fixed"},
            defaults={"size": "1024x1024"},
        )
        ws = folder / "ws"
        done = cli(ws, "run", str(spec), "--no-progress")
        assert done.returncode == 7, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        job = only_job_id(ws)
        assert last == (
            f"imagebatch: error: the disk holding {ws} is full ({_said(last)}); free some space, "
            f"then `imagebatch resume {job}` continues the job"
        )
        assert "Traceback" not in done.stderr
        subprocess.run(["mount", "-o", "remount,size=80M", str(folder)], check=True)
        resumed = cli(ws, "resume", job, "--no-progress")
        assert resumed.returncode == 0, resumed.stderr
        assert "30 completed" in resumed.stdout
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _said(line: str) -> str:
    """What the system said (the disk may fill at an image or at the journal)."""
    return line.split(" is full (", 1)[1].split("); free", 1)[0]

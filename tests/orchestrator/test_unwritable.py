"""A workspace that stops taking writes for another reason than a full disk: its file system
turned read-only (Linux does this to a disk that reports errors), the system refuses the folder,
or the disk fails a write. As on a full disk, the run stops at once with one line and exit 7,
nothing is marked failed for it, and the job resumes once the cause is fixed."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import orchestrator.storage as storage
from orchestrator.errors import DiskFullError, StorageError, storage_error
from orchestrator.journal import DiskJournal, RunJournal
from orchestrator.states import ItemStatus, JobStatus
from orchestrator.storage import atomic_write
from orchestrator.testing.scripted import ScriptedProvider, make_spec

from ..cli_helpers import cli, write_spec
from .conftest import MakeOrchestrator


def _sqlite_error(message: str, code: int) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            OSError(errno.EROFS, "Read-only file system"),
            "the file system holding /ws is read-only (Read-only file system); make it writable",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied"),
            "imagebatch may not write in /ws (Permission denied); allow it to",
        ),
        (
            OSError(errno.EIO, "Input/output error"),
            "the disk holding /ws failed a write (Input/output error); check the disk",
        ),
        (
            _sqlite_error("disk I/O error", 10 | 3 << 8),  # SQLITE_IOERR_WRITE
            "the disk holding /ws failed a write (disk I/O error); check the disk",
        ),
        (
            _sqlite_error("disk I/O error", 10 | 1 << 8),  # SQLITE_IOERR_READ
            "the disk holding /ws failed a read (disk I/O error); check the disk",
        ),
        (
            _sqlite_error("attempt to write a readonly database", 8),
            "the file system holding /ws is read-only (attempt to write a readonly database)",
        ),
    ],
)
def test_what_each_cause_says(error: BaseException, said: str) -> None:
    made = storage_error("/ws", error)
    assert isinstance(made, StorageError) and not isinstance(made, DiskFullError)
    assert str(made).startswith(said)
    assert made.exit_code == 7


def test_errors_of_one_file_are_not_the_workspaces() -> None:
    assert storage_error("/ws", FileNotFoundError(errno.ENOENT, "No such file")) is None
    assert storage_error("/ws", PermissionError("a folder is a symbolic link")) is None
    assert storage_error("/ws", _sqlite_error("no such table: jobs", 1)) is None
    full = storage_error("/ws", OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(full, DiskFullError)


def test_a_write_on_a_read_only_file_system_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(storage, "open", read_only, raising=False)
    with pytest.raises(StorageError, match="is read-only"):
        atomic_write(tmp_path / "images" / "a.png", b"x", root=tmp_path)
    assert not list(tmp_path.rglob("*.tmp"))


def _pages_full(journal: DiskJournal) -> None:
    pages = journal.store.execute("PRAGMA page_count").fetchone()[0]
    journal.store.execute(f"PRAGMA max_page_count = {pages}")


@pytest.mark.parametrize(
    ("refuse", "allow", "raised", "said"),
    [
        (  # SQLite's SQLITE_FULL when its file cannot grow, as on a full disk
            _pages_full,
            "PRAGMA max_page_count = 1000000",
            DiskFullError,
            "is full",
        ),
        (  # SQLITE_READONLY, as on a read-only file system
            lambda journal: journal.store.execute("PRAGMA query_only = 1"),
            "PRAGMA query_only = 0",
            StorageError,
            "is read-only",
        ),
    ],
    ids=["full", "read-only"],
)
def test_a_journal_that_cannot_be_written_says_so_and_stays_usable(
    tmp_path: Path,
    refuse: Callable[[DiskJournal], object],
    allow: str,
    raised: type[StorageError],
    said: str,
) -> None:
    """A verb the journal cannot write raises `StorageError`, its transaction is rolled
    back, and the same connection writes again once it may."""
    journal = DiskJournal(tmp_path / "journal")
    try:
        job, lease = journal.create_job(make_spec(40), lock=True)
        assert lease is not None
        run = RunJournal(journal, job.id, lease)
        run.start()
        refuse(journal)
        with pytest.raises(raised, match=said):
            for n in range(40):  # every attempt adds an event: the file must grow
                run.start_attempt(f"i{n}")
        journal.store.execute(allow)
        assert run.start_attempt("i39") is not None  # the connection is not left in a transaction
    finally:
        journal.close()


@pytest.mark.parametrize(
    ("refusal", "raised"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), DiskFullError),
        (OSError(errno.EROFS, "Read-only file system"), StorageError),
        (PermissionError(errno.EACCES, "Permission denied"), StorageError),
    ],
    ids=["full", "read-only", "refused"],
)
async def test_a_run_stops_when_the_workspace_refuses_writes_and_resumes_after(
    make_orchestrator: MakeOrchestrator,
    monkeypatch: pytest.MonkeyPatch,
    refusal: OSError,
    raised: type[StorageError],
) -> None:
    """The run stops at once, nothing is marked failed for it, and the job resumes once the
    workspace takes writes, paying again only for the images that were in flight. Before,
    each paid image failed to be stored, its item was marked failed, and the run went on
    paying for images it could not keep."""
    real_open = open
    allowed = {"files": 3 * 4}  # raw, processed and thumbnail of four images

    def refusing(path: Any, *args: Any, **kwargs: Any) -> Any:
        if allowed["files"] <= 0:
            raise refusal
        allowed["files"] -= 1
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(storage, "open", refusing, raising=False)
    provider = ScriptedProvider()
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(12, concurrency=2))
    with pytest.raises(raised):
        await job.wait()
    stopped = await job.status()
    assert stopped.status == JobStatus.RUNNING and not stopped.active  # interrupted, resumable
    assert not [item for item in await job.items() if item.status == ItemStatus.FAILED]
    # room for twelve files: four images, or three when two slots' files interleave
    assert stopped.count(ItemStatus.COMPLETED) in (3, 4)
    # Four images whole; or a fifth's raw image too, when both slots wrote one just before
    # the refusals began (its post-processing, refused, waits for the resume). Then each slot
    # paid for one more image that could not be kept.
    assert len(provider.calls) <= 4 + 1 + 2, "at most the slots' images in flight paid in vain"

    monkeypatch.setattr(storage, "open", real_open, raising=False)
    resumed = await orch.start(job.id)
    assert (await resumed.wait()).status == JobStatus.COMPLETED
    assert len(provider.calls) <= 12 + 2, "no image that was kept is paid for twice"


# ---------------------------------------------------------------- a real read-only remount


def _root(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@dataclass
class Ext4:
    """A 64 MB ext4 file system on a loop device, set to turn read-only on an error."""

    image: Path
    folder: Path
    trigger: Path
    """The sysfs file that reports an error to it (as a failing disk would)."""

    def fail(self) -> None:
        self.trigger.write_text("1")

    def check_and_remount(self) -> None:
        """What a person does after the error: unmount, check, mount again."""
        _root("umount", str(self.folder))
        _root("e2fsck", "-fy", str(self.image))
        assert _root("mount", "-o", "loop", str(self.image), str(self.folder)).returncode == 0


@pytest.fixture
def ext4(tmp_path: Path) -> Iterator[Ext4]:
    """Needs root, mkfs.ext4 and a loop device; skipped (saying so) where they are missing."""
    if os.geteuid() != 0 or not (shutil.which("mkfs.ext4") and shutil.which("losetup")):
        pytest.skip("an ext4 on a loop device needs root, mkfs.ext4 and loop devices")
    folder = Path("/tmp") / f"ib-ext4-{uuid.uuid4().hex[:8]}"
    image = tmp_path / "fs.img"
    with image.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)
    folder.mkdir()
    try:
        made = (
            _root("mkfs.ext4", "-q", "-F", str(image)).returncode == 0
            and not _root(
                "mount", "-o", "loop,errors=remount-ro", str(image), str(folder)
            ).returncode
        )
        device = _root("findmnt", "-n", "-o", "SOURCE", str(folder)).stdout.strip()
        trigger = Path("/sys/fs/ext4") / Path(device).name / "trigger_fs_error"
        if not made or not device or not trigger.exists():
            pytest.skip("no ext4 on a loop device here (no loop device, or no trigger_fs_error)")
        yield Ext4(image, folder, trigger)
    finally:
        _root("umount", str(folder))
        shutil.rmtree(folder, ignore_errors=True)


def _run_until(ws: Path, spec: Path, completed: int) -> tuple[subprocess.Popen[str], list[str]]:
    """`imagebatch run SPEC` on `ws`, read until it has said `completed` images are; the
    process and the ids it said so of (it prints a line per image as each ends)."""
    running = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "--workspace", str(ws), "run", str(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # its lines as they are printed
    )
    assert running.stderr is not None
    said: list[str] = []
    try:
        while len(said) < completed:
            line = running.stderr.readline()
            assert line, f"the run ended early, after {said}"
            if ": completed (" in line:
                said.append(line.split(":", 1)[0])
    except BaseException:
        running.kill()
        raise
    return running, said


def _slow_spec(tmp_path: Path, items: int) -> Path:
    options = {"seed": 3, "latency_mean_s": 0.2, "latency_distribution": "fixed"}
    return write_spec(tmp_path, items=items, options=options, limits={"concurrency": 2})


def test_the_program_on_a_file_system_that_turns_read_only(tmp_path: Path, ext4: Ext4) -> None:
    """`imagebatch run` on an ext4 that Linux turns read-only mid-run, as it does when a disk
    reports errors: one line and exit 7, no traceback; once the file system is checked and
    mounted again, `resume` completes the job."""
    ws = ext4.folder / "ws"
    running, _ = _run_until(ws, _slow_spec(tmp_path, 40), completed=4)
    try:
        os.sync()  # what was written so far outlives the error (the page cache does not)
        ext4.fail()
        _, stderr = running.communicate(timeout=60)
    finally:
        running.kill()
    assert running.returncode == 7, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("imagebatch: error: the ") and f" {ws} " in last
    assert last.endswith(" continues the job") and "`imagebatch resume " in last
    job = last.split("`imagebatch resume ", 1)[1].split("`", 1)[0]

    ext4.check_and_remount()
    resumed = cli(ws, "resume", job, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "40 completed" in resumed.stdout


def test_what_the_program_said_was_completed_outlives_a_power_cut(
    tmp_path: Path, ext4: Ext4
) -> None:
    """A file system that turns read-only drops what the page cache had not written, as a
    power cut or a crash of the system does. Every image the program reported completed is
    still completed after it (each commit reaches the disk before it is reported), and
    `resume` completes the job, every file of it whole."""
    ws = ext4.folder / "ws"
    running, said = _run_until(ws, _slow_spec(tmp_path, 30), completed=6)
    try:
        ext4.fail()  # no sync: the page cache's unwritten pages are lost
        running.communicate(timeout=60)
    finally:
        running.kill()
    assert running.returncode == 7

    ext4.check_and_remount()
    listed = cli(ws, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    job = json.loads(listed.stdout)[0]["id"]
    status = json.loads(cli(ws, "status", job, "--json").stdout)
    completed = {item["id"] for item in status["items"] if item["status"] == "completed"}
    assert set(said) <= completed
    resumed = cli(ws, "resume", job, "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "30 completed" in resumed.stdout
    final = json.loads(cli(ws, "status", job, "--json").stdout)["items"]
    for item in final:  # what the power cut emptied or lost was made again
        for path in (item["raw"], item["image"], item["thumbnail"]):
            with Image.open(path) as written:
                written.load()

"""A real `imagebatch run` killed with SIGKILL, then resumed: no image is paid for twice.

The run is a subprocess on the mock provider; the test waits (bounded) until a few items are
completed, kills it, and checks what the journal and the files on disk say before and after
`imagebatch resume`.
"""

from __future__ import annotations

import io
import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from orchestrator.events import ItemCompleted, ItemReset, ItemStarted
from orchestrator.journal import RawImage, RunJournal
from orchestrator.records import ItemRecord
from orchestrator.storage import Workspace, atomic_write, sha256_hex
from orchestrator.wording import format_duration

from .cli_helpers import (
    cli,
    item_records,
    journal_at,
    ok,
    one_line_error,
    only_job_id,
    running_items,
    start_cli,
    status,
    stopped_at_end,
    wait_for,
    write_spec,
)

KEY = "story-1"


@dataclass(frozen=True)
class Killed:
    """What the journal and the disk held right after the SIGKILL."""

    job_id: str
    pid: int
    seq: int
    items: dict[str, ItemRecord]
    raw: dict[str, tuple[str, int]]
    """Completed item -> (sha256, mtime_ns) of its raw file."""


def _completed(ws: Path, job_id: str) -> int:
    return sum(item.status == "completed" for item in item_records(ws, job_id))


def _run_and_kill(tmp_path: Path, ws: Path, *, items: int, kill_after: int) -> Killed:
    spec = write_spec(
        tmp_path,
        items=items,
        options={"seed": 11, "latency_mean_s": 0.4, "latency_distribution": "uniform"},
        limits={"concurrency": 4, "timeout_s": 30, "max_attempts": 3},
    )
    log = tmp_path / "killed"
    with stopped_at_end(start_cli(ws, "run", str(spec), log=log)) as proc:
        job_id = wait_for("the job to be recorded", lambda: only_job_id(ws), proc)
        wait_for(
            f"{kill_after} completed items",
            lambda: _completed(ws, job_id) >= kill_after,
            proc,
        )
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL  # reaped: its pid is really gone
    workspace = Workspace(ws.resolve())
    with journal_at(ws) as journal:
        seq = journal.last_seq()
        records = {item.id: item for item in journal.items(job_id)}
    raw = {}
    for item in records.values():
        if item.status == "completed":
            assert item.raw_path is not None
            path = workspace.absolute(item.raw_path)
            raw[item.id] = (sha256_hex(path.read_bytes()), path.stat().st_mtime_ns)
    return Killed(job_id, proc.pid, seq, records, raw)


def test_sigkill_then_resume_pays_for_nothing_twice(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    killed = _run_and_kill(tmp_path, ws, items=16, kill_after=4)
    done = {i for i, item in killed.items.items() if item.status == "completed"}
    running = {i for i, item in killed.items.items() if item.status == "running"}
    assert len(done) >= 4
    assert len(done) < 16, "the kill came too late to test anything"
    assert running, "with 4 slots and items left, some were running at the kill"

    # the dead run left the job unfinished and its lock behind
    seen = status(ws, killed.job_id)
    assert seen["job"]["status"] not in ("completed", "partial", "failed", "cancelled")
    assert seen["job"]["runner_alive"] is False
    text = ok(cli(ws, "status", killed.job_id))
    assert f"no process is running it: `imagebatch resume {killed.job_id}`" in text
    # the dead run's time stops at its last recorded change; it does not go on counting
    with journal_at(ws) as journal:
        record = journal.job(killed.job_id)
    assert f" · {format_duration(record.run_time(record.updated_at))} run · " in text
    assert record.run_time(record.updated_at) < record.run_time(time.time())
    listed = ok(cli(ws, "list"))
    assert f"{killed.job_id}" in listed and " stopped " in listed and " running " not in listed
    (as_json,) = json.loads(ok(cli(ws, "list", "--json")))
    assert as_json["status"] == "running" and as_json["runner_alive"] is False
    with journal_at(ws) as journal:
        lock = journal.locks.holder(KEY)
    assert lock is not None
    assert (lock.pid, lock.job_id) == (killed.pid, killed.job_id)

    # resume in another process: the dead pid's lock is taken over at once
    final = json.loads(ok(cli(ws, "resume", killed.job_id, "--json")))
    assert final["job"]["status"] == "completed"
    assert final["job"]["counts"]["completed"] == 16

    workspace = Workspace(ws.resolve())
    after = {item.id: item for item in item_records(ws, killed.job_id)}
    with journal_at(ws) as journal:
        events = journal.events(after=killed.seq, job_id=killed.job_id)
        assert journal.locks.holder(KEY) is None, "the resumed run released the lock"

    for item_id in done:
        before, now = killed.items[item_id], after[item_id]
        assert now.attempt_count == before.attempt_count, item_id
        assert now.raw_path == before.raw_path
        assert now.raw_sha256 == before.raw_sha256
        assert now.raw_path is not None
        path = workspace.absolute(now.raw_path)
        assert (sha256_hex(path.read_bytes()), path.stat().st_mtime_ns) == killed.raw[item_id]
    started_again = {e.item_id for e in events if isinstance(e, ItemStarted)}
    assert started_again.isdisjoint(done), started_again & done
    assert started_again >= set(killed.items) - done, "every unfinished item was taken up"

    for item_id in running:
        before, now = killed.items[item_id], after[item_id]
        assert now.status == "completed"
        if before.attempts and before.attempts[-1].outcome == "running":
            # a call was in flight: it is closed as interrupted and the item tried again
            number = before.attempt_count
            assert now.attempts[number - 1].outcome == "interrupted", now.attempts
            assert now.attempt_count > number
            assert now.attempts[-1].outcome == "ok"
        else:
            # the image was already received: only post-processing ran again, no new call
            assert now.attempt_count == before.attempt_count
            assert now.raw_sha256 == before.raw_sha256
        resets = [e for e in events if e.item_id == item_id and isinstance(e, ItemReset)]
        assert resets and resets[0].reason == "interrupted"

    for item in after.values():
        assert item.status == "completed"
        assert all(a.outcome != "running" for a in item.attempts)
        assert item.image_path is not None
        assert workspace.absolute(item.image_path).is_file()


def test_after_a_kill_the_same_spec_is_refused_until_the_job_is_finished(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    killed = _run_and_kill(tmp_path, ws, items=8, kill_after=2)
    spec = tmp_path / "spec.json"

    # running the spec again would pay twice for the finished items: refused, naming the job
    line = one_line_error(cli(ws, "run", str(spec)), code=5)
    assert killed.job_id in line
    assert f"imagebatch resume {killed.job_id}" in line
    with journal_at(ws) as journal:
        assert [job.id for job in journal.jobs()] == [killed.job_id]

    # the dead run's lock can be cleared by hand; clear-lock says whose it was
    out = ok(cli(ws, "clear-lock", KEY))
    assert killed.job_id in out
    assert str(killed.pid) in out
    assert "no lock" in ok(cli(ws, "clear-lock", KEY))

    # `resume` with no job finds the unfinished one and completes it
    ok(cli(ws, "resume"))
    data = status(ws, killed.job_id)
    assert data["job"]["status"] == "completed"
    done_before = {i for i, item in killed.items.items() if item.status == "completed"}
    after = {item.id: item for item in item_records(ws, killed.job_id)}
    for item_id in done_before:
        assert after[item_id].attempt_count == killed.items[item_id].attempt_count

    # now the key is free again
    ok(cli(ws, "run", str(spec)))


def test_an_image_received_before_the_crash_is_only_post_processed(tmp_path: Path) -> None:
    """The raw image is recorded before post-processing: a crash in between costs no new call."""
    ws = tmp_path / "ws"
    job = ok(cli(ws, "create", str(write_spec(tmp_path, items=2)))).strip()
    workspace = Workspace(ws.resolve())
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 40, 40)).save(buffer, format="PNG")
    png = buffer.getvalue()

    # play a run that died after receiving img-1's image and before post-processing it
    with journal_at(ws) as journal:
        lease = journal.locks.acquire(KEY, job)
        run = RunJournal(journal, job, lease)
        run.start()
        assert run.start_attempt("img-1") is not None
        raw = workspace.raw_path(job, "img-1", "png")
        atomic_write(raw, png)
        image = RawImage(
            path=workspace.relative(raw),
            sha256=sha256_hex(png),
            mime_type="image/png",
            bytes=len(png),
            width=40,
            height=30,
            model="mock-1",
        )
        run.record_image("img-1", image)
        journal.locks.release(lease)  # the process is gone; its lock with it
        seq = journal.last_seq()

    final = json.loads(ok(cli(ws, "resume", job, "--json")))
    assert final["job"]["status"] == "completed"
    with journal_at(ws) as journal:
        item = journal.item(job, "img-1")
        events = journal.events(after=seq, job_id=job)
    assert item.status == "completed"
    assert item.attempt_count == 1, "no second call for an image already received"
    assert (item.width, item.height) == (40, 30), "the processed image is the received one"
    assert sha256_hex(raw.read_bytes()) == sha256_hex(png)
    started = [e for e in events if e.item_id == "img-1" and isinstance(e, ItemStarted)]
    assert started and all(e.postprocess_only for e in started)
    assert any(e.item_id == "img-1" and isinstance(e, ItemCompleted) for e in events)


def _processes_mentioning(text: str) -> list[int]:
    """Processes whose command line holds `text` (the fork server's names its parent's folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and "multiprocessing" in cmdline:
            found.append(int(entry.name))
    return found


def test_no_post_processing_worker_outlives_a_killed_run(tmp_path: Path) -> None:
    """Post-processing runs in worker processes (and their fork server); a SIGKILL of the run
    must not leave them behind."""
    ws = tmp_path / "ws"
    spec = write_spec(
        tmp_path,
        items=12,
        options={"seed": 2, "latency_mean_s": 0.3, "latency_distribution": "fixed"},
        limits={"concurrency": 2, "timeout_s": 30, "max_attempts": 2},
        defaults={"size": "320x320"},  # over SMALL_PIXELS: done in worker processes
    )
    log = tmp_path / "killed"
    here = tmp_path / "here"  # the run's folder: the fork server's command line names it
    here.mkdir()
    with stopped_at_end(start_cli(ws, "run", str(spec), log=log, cwd=here)) as proc:
        job = wait_for("the job", lambda: only_job_id(ws), proc)
        wait_for("a post-processed image", lambda: _completed(ws, job) >= 1, proc)
        marker = str(here)
        assert _processes_mentioning(marker), "post-processing ran in worker processes"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    wait_for("the workers and their fork server to go", lambda: not _processes_mentioning(marker))


def test_a_kill_while_a_sigterm_lets_the_requests_finish_is_not_counted_as_their_crash(
    tmp_path: Path,
) -> None:
    """A service manager sends SIGTERM, then SIGKILL when its grace period ends, maybe while
    the run still waits for its requests. That death is the stop's, not the images': three of
    them would otherwise fail those images as a crash loop."""
    ws = tmp_path / "ws"
    slow = {"latency_mean_s": 30.0, "latency_distribution": "fixed"}
    spec = write_spec(tmp_path, items=3, options=slow, limits={"concurrency": 2, "timeout_s": 60})
    log = tmp_path / "run"
    with stopped_at_end(start_cli(ws, "run", str(spec), log=log)) as proc:
        job: str = wait_for("the job", lambda: only_job_id(ws), proc)
        wait_for("two running items", lambda: len(running_items(ws, job)) == 2, proc)
        proc.send_signal(signal.SIGTERM)
        with journal_at(ws) as journal:
            wait_for("the run to be stopping", lambda: journal.job(job).stopping, proc)
        proc.kill()
        proc.wait(timeout=30)
    with journal_at(ws) as journal:  # what a resume does first, without its 30 s calls
        lease = journal.locks.acquire(KEY, job)  # its owner is dead: taken over
        snapshot = RunJournal(journal, job, lease).start()
        journal.locks.release(lease)
    recovered = [item for item in snapshot.items if item.attempts]
    assert len(recovered) == 2
    assert all(item.status == "pending" and item.crashes == 0 for item in recovered), recovered
    assert [item.attempts[-1].outcome for item in recovered] == ["interrupted", "interrupted"]

"""The stale-lease trial: a runner paused (SIGSTOP) while it holds a job's lock, the lock going
stale, another runner taking the job over, and the paused one woken (SIGCONT) to write again.

The old runner is a real `imagebatch run` process; the new owner is this process, through the
public Python API (`Orchestrator.start` tried every 50 ms, as a patient user's script would), so
the moment of the takeover is measured without a process start-up in it. Half the rounds wake the
old runner after the new owner finished the job, half while the new owner still runs it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator import Orchestrator
from orchestrator.errors import KeyConflictError
from orchestrator.storage import Workspace

from . import _procs as procs
from .registry import Result, Rounds, trial

TTL_S = 3.0
HEARTBEAT_S = 1.0
"""What a runner with `--stale-after 3` uses: max(1, TTL / 10)."""
TRY_EVERY_S = 0.05
SLOW = {"seed": 2, "latency_mean_s": 1.0, "latency_distribution": "fixed"}


@dataclass
class Takeover:
    after_stop_s: float
    """From the SIGSTOP to the new owner's start."""
    after_heartbeat_s: float
    """From the old owner's last heartbeat to the new owner's start."""


@trial(
    "stale-lease",
    "holder paused (SIGSTOP), lease expires, old holder resumes (SIGCONT): takeover within TTL + "
    "one heartbeat; 0 writes accepted from the old token; old holder exits 6 with one line",
)
def stale_lease(rounds: Rounds) -> Result:
    count = rounds.count(2, 50)
    failures: list[str] = []
    takeovers: list[Takeover] = []
    for round_ in range(count):
        takeovers.append(_round(rounds.folder, round_, failures))
    slowest = max(t.after_stop_s for t in takeovers)
    earliest = min(t.after_heartbeat_s for t in takeovers)
    late = [t for t in takeovers if t.after_stop_s > TTL_S + HEARTBEAT_S + TRY_EVERY_S * 4]
    early = [t for t in takeovers if t.after_heartbeat_s < TTL_S]
    writes = sum(1 for line in failures if "accepted" in line)
    measured = (
        f"{count} rounds, TTL {TTL_S:g} s + heartbeat {HEARTBEAT_S:g} s: takeover at most "
        f"{slowest:.2f} s after the stop (never before {earliest:.2f} s after the last "
        f"heartbeat); {writes} rounds with writes from the old token; {len(failures)} rounds wrong"
    )
    return Result(
        measured=measured,
        passed=not failures and not late and not early,
        details=procs.tally(failures),
    )


def _round(folder: Path, round_: int, failures: list[str]) -> Takeover:
    here = folder / f"lease-{round_}"
    here.mkdir()
    spec = procs.mock_spec(here, f"lease-{round_}", items=8, options=SLOW)
    ws, log = here / "ws", here / "old"
    old = procs.start(ws, "--stale-after", str(TTL_S), "run", str(spec), log=log)
    with procs.reaped(old):
        job_id = procs.wait_for("the job", lambda: procs.only_job_id(ws), old)
        procs.wait_for("an image in flight", lambda: _running(ws, job_id), old)
        stopped_at = _stop_between_writes(old, ws)
        try:
            wake_early = round_ % 2 == 1
            takeover, files, seq = asyncio.run(_take_over(ws, job_id, old.pid, wake_early))
        finally:
            old.send_signal(signal.SIGCONT)
        code, err = procs.finish(old, log)
    takeover.after_stop_s -= stopped_at
    _check(round_, ws, job_id, code, err, failures)
    if not wake_early:  # the old runner woke after the job ended: it must have changed nothing
        _check_untouched(round_, ws, job_id, files, seq, failures)
    return takeover


async def _take_over(
    ws: Path, job_id: str, old_pid: int, wake_early: bool
) -> tuple[Takeover, dict[str, tuple[int, int]], int]:
    """Take the job over as soon as the lock allows; wake the old runner at once or at the end.
    Returns the takeover's times (`after_stop_s` as a wall-clock time for now), and the job's
    files and last event once the job ended."""
    workspace = Workspace(ws)
    async with Orchestrator(workspace, env=procs.env(), stale_after_s=TTL_S) as orchestrator:
        journal = await orchestrator.ready()
        holder = await journal.holder((await journal.job(job_id)).key)  # its last heartbeat
        assert holder is not None
        while True:
            try:
                handle = await orchestrator.start(job_id)
                break
            except KeyConflictError:
                await asyncio.sleep(TRY_EVERY_S)
        took = time.time()
        if wake_early:
            os.kill(old_pid, signal.SIGCONT)
        await handle.wait()
    files = await asyncio.to_thread(_files, ws / "images")
    seq = await asyncio.to_thread(_last_seq, ws)
    return Takeover(took, took - holder.heartbeat_at), files, seq


def _check(round_: int, ws: Path, job_id: str, code: int, err: str, failures: list[str]) -> None:
    lines = err.strip().splitlines()
    said = lines[-1] if lines else ""
    if code != 6 or "Traceback" in err or not said.startswith("imagebatch: error: lock for key"):
        failures.append(f"round {round_}: the old runner exited {code}: {err.strip()[-300:]!r}")
    job = procs.job(ws, job_id)
    item_states = {item.status for item in procs.items(ws, job_id)}
    if job.status != "completed" or item_states != {"completed"}:
        failures.append(f"round {round_}: writes accepted: job {job.status}, items {item_states}")
    if (check := procs.integrity(ws)) != "ok":
        failures.append(f"round {round_}: SQLite integrity check: {check}")


def _check_untouched(
    round_: int,
    ws: Path,
    job_id: str,
    files: dict[str, tuple[int, int]],
    seq: int,
    failures: list[str],
) -> None:
    if (now := _last_seq(ws)) != seq:
        failures.append(f"round {round_}: {now - seq} journal writes accepted from the old token")
    changed = sorted(
        name for name, stat in _files(ws / "images").items() if files.get(name) != stat
    )
    if changed:
        failures.append(f"round {round_}: files written with the old token accepted: {changed}")


def _stop_between_writes(proc: subprocess.Popen[str], ws: Path) -> float:
    """SIGSTOP `proc` at a moment it holds no SQLite write lock; returns when (wall clock).

    A process stopped inside a write transaction keeps SQLite's lock, and every other writer of
    the workspace waits until it is woken: no lease can help with that, so such a stop is moved
    on (woken, and stopped again a moment later)."""
    while True:
        proc.send_signal(signal.SIGSTOP)
        stopped_at = time.time()
        if _writable(ws):
            return stopped_at
        proc.send_signal(signal.SIGCONT)
        time.sleep(0.01)


def _writable(ws: Path) -> bool:
    database = sqlite3.connect(ws / "journal" / "journal.sqlite3", timeout=0.2)
    try:
        database.execute("BEGIN IMMEDIATE")
        database.rollback()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        database.close()


def _running(ws: Path, job_id: str) -> bool:
    return any(item.status == "running" for item in procs.items(ws, job_id))


def _last_seq(ws: Path) -> int:
    with procs.journal_at(ws) as journal:
        return journal.last_seq()


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below `folder`: its inode and modification time (a replaced file changes)."""
    found = {}
    for path in folder.rglob("*"):
        if path.is_file():
            stat = path.stat()
            found[str(path.relative_to(folder))] = (stat.st_ino, stat.st_mtime_ns)
    return found

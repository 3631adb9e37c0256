"""Crash trials: a run killed (SIGKILL) or stopped (SIGTERM) at a random moment and resumed, and
two runs of one key started at the same moment. Real `imagebatch` processes on the mock."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import time
from pathlib import Path

from orchestrator.records import ItemRecord

from . import _procs as procs
from .registry import Result, Rounds, trial

FAST = {"seed": 3, "latency_mean_s": 0.05, "latency_distribution": "uniform"}
SLOW = {"seed": 1, "latency_mean_s": 1.5, "latency_distribution": "fixed"}


@trial(
    "sigkill-resume",
    "SIGKILL at a random moment of a 200-item job, restart and resume: 0 completed items lost, "
    "every job terminal, SQLite integrity ok every time",
)
def sigkill_resume(rounds: Rounds) -> Result:
    return _stops_then_resumes(rounds, signal.SIGKILL, "kills", items=200)


@trial(
    "sigterm-resume",
    "SIGTERM at a random moment of a 100-item job: exit 143 (or 0 if done) with one line, no "
    "traceback; resume completes the job with 0 completed items lost",
)
def sigterm_resume(rounds: Rounds) -> Result:
    return _stops_then_resumes(rounds, signal.SIGTERM, "SIGTERMs", items=100)


def _stops_then_resumes(rounds: Rounds, signum: int, what: str, *, items: int) -> Result:
    """`items`-item jobs stopped with `signum` at random moments (3 in a quick round, one per
    item in a full one), each resumed to its end."""
    count = rounds.count(3, items)
    failures: list[str] = []
    lost = 0
    for round_ in range(count):
        lost += _stop_then_resume(rounds.folder, round_, signum, failures, items=items)
    return Result(
        measured=f"{count} {what}: {lost} completed items lost, {len(failures)} rounds wrong",
        passed=lost == 0 and not failures,
        details=procs.tally(failures),
    )


def _stop_then_resume(
    folder: Path, round_: int, signum: int, failures: list[str], *, items: int
) -> int:
    """Run a job of `items` images, send `signum` at a random moment, resume it; the completed
    items lost (or made again). Anything else wrong is added to `failures`."""
    rng = random.Random(f"{signum}-{round_}")
    here = folder / f"{signal.Signals(signum).name.lower()}-{round_}"
    here.mkdir()
    spec = procs.mock_spec(here, f"crash-{round_}", items=items, options=FAST)
    ws, log = here / "ws", here / "run"
    code, err = _run_and_stop(ws, spec, log, signum, rng, items=items)
    if code not in (0, -signum, 143):
        failures.append(f"round {round_}: exit {code} on its own: {err.strip()[-400:]!r}")
        return 0
    problem = _exit_problem(signum, code, err)
    if problem:
        failures.append(f"round {round_}: {problem}")
    job_id = procs.only_job_id(ws)
    if job_id is None:  # stopped before it recorded the job: nothing to lose
        return 0
    if code == -signal.SIGTERM and procs.job(ws, job_id).status != "completed":
        failures.append(f"round {round_}: killed by SIGTERM's default action mid-job")
    before = procs.items(ws, job_id)
    if any(item.status != "completed" for item in before):
        resumed = procs.cli(ws, "resume", job_id, "--no-progress")
        if resumed.returncode != 0:
            failures.append(f"round {round_}: resume exited {resumed.returncode}")
    lost = _lost(ws, before, procs.items(ws, job_id))
    status = procs.job(ws, job_id).status
    if status != "completed":
        failures.append(f"round {round_}: the job ended {status}")
    if (check := procs.integrity(ws)) != "ok":
        failures.append(f"round {round_}: SQLite integrity check: {check}")
    return lost


def _run_and_stop(
    ws: Path, spec: Path, log: Path, signum: int, rng: random.Random, *, items: int
) -> tuple[int, str]:
    """Start the run, send `signum` at a random moment; how it ended (code, stderr)."""
    proc = procs.start(ws, "run", str(spec), log=log)
    with procs.reaped(proc):
        if rng.random() < 0.2:  # while it starts up, before the job is recorded
            time.sleep(rng.uniform(0.0, 1.0))
        else:  # while it runs (200 images take about 3 s on two busy cores)
            _wait_for_job(ws, proc)
            time.sleep(rng.uniform(0.0, 3.0 * items / 200))
        if proc.poll() is None:
            proc.send_signal(signum)
        return procs.finish(proc, log)


def _wait_for_job(ws: Path, proc: subprocess.Popen[str]) -> None:
    """Until the run recorded its job, or ended (the caller then reports how it ended)."""
    deadline = time.monotonic() + procs.WAIT_S
    while procs.only_job_id(ws) is None and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)


def _exit_problem(signum: int, code: int, err: str) -> str | None:
    """What is wrong with how the stopped process left, if anything."""
    if signum == signal.SIGKILL:
        return None if code == -signal.SIGKILL else f"exit {code} after SIGKILL"
    if code == 0 and "Traceback" not in err:
        return None  # it finished before the signal came
    if code == -signal.SIGTERM and not err.strip():
        return None  # before the command set its handler up: nothing written yet (see below)
    lines = err.strip().splitlines()  # one line per item (no live display), then why it stopped
    if code != 143 or "Traceback" in err or not lines or "stopped by SIGTERM" not in lines[-1]:
        return f"exit {code} after SIGTERM: {err.strip()[-300:]!r}"
    return None


def _lost(ws: Path, before: list[ItemRecord], after: list[ItemRecord]) -> int:
    """Items completed before the stop that are not the same completed image after the resume:
    the same attempts and SHA-256, and the raw file on disk with that SHA-256."""
    now = {item.id: item for item in after}
    return sum(
        1
        for item in before
        if item.status == "completed" and not _same_image(ws, item, now[item.id])
    )


def _same_image(ws: Path, was: ItemRecord, now: ItemRecord) -> bool:
    if now.status != "completed" or now.raw_path is None:
        return False
    if (now.raw_sha256, now.attempt_count) != (was.raw_sha256, was.attempt_count):
        return False
    try:
        data = (ws / now.raw_path).read_bytes()
    except OSError:
        return False
    return hashlib.sha256(data).hexdigest() == now.raw_sha256


@trial(
    "key-race",
    "two processes start the same key at once, 200 races: exactly one runs every time (the "
    "other exits 5 with one line)",
)
def key_race(rounds: Rounds) -> Result:
    count = rounds.count(3, 200)
    failures: list[str] = []
    for round_ in range(count):
        problem = _race(rounds.folder, round_)
        if problem:
            failures.append(f"round {round_}: {problem}")
    return Result(
        measured=f"{count} races: exactly one ran in {count - len(failures)}",
        passed=not failures,
        details=procs.tally(failures),
    )


def _race(folder: Path, round_: int) -> str | None:
    """Start two runs of one key together; what went wrong, if anything."""
    here = folder / f"race-{round_}"
    here.mkdir()
    spec = procs.mock_spec(here, f"race-{round_}", items=2, options=SLOW)
    ws = here / "ws"
    both = [
        subprocess.Popen(
            procs.command(ws, "--no-progress", "run", str(spec)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=procs.env(),
        )
        for _ in range(2)
    ]
    results = [(proc.wait(timeout=procs.TIMEOUT_S), *proc.communicate()) for proc in both]
    codes = sorted(code for code, _, _ in results)
    if codes != [0, 5]:
        return f"exit codes {codes}: {[err[-200:] for _, _, err in results]}"
    lost = next(err for code, _, err in results if code == 5)
    line = procs.one_line(lost)
    if line is None or f"race-{round_}" not in line:
        return f"the refused run said {lost[-300:]!r}"
    listed = procs.cli(ws, "list", "--json")
    statuses = [job["status"] for job in json.loads(listed.stdout)]
    return None if statuses == ["completed"] else f"jobs {statuses}, not one completed job"

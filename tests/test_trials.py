"""Reliability trials with real processes, a few rounds in the suite and the long trials behind
the slow marker (`pytest -m slow tests/test_trials.py`, 200 rounds each):

- two `imagebatch run` of one key started at the same moment: exactly one runs the job, the
  other exits 5 (key conflict) with one line and writes no job;
- a run SIGKILLed at a random moment, then resumed: no completed image lost or made again, the
  job ends completed, and SQLite's integrity check passes every time."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .cli_helpers import (
    _env,
    cli,
    item_records,
    only_job_id,
    start_cli,
    stopped_at_end,
    wait_for,
    write_spec,
)

SLOW = {"seed": 1, "latency_mean_s": 1.5, "latency_distribution": "fixed"}


def _race(tmp_path: Path, round_: int) -> None:
    folder = tmp_path / f"round-{round_}"
    folder.mkdir()
    spec = write_spec(folder, items=2, options=SLOW, key=f"race-{round_}")
    ws = folder / "ws"
    command = [sys.executable, "-m", "orchestrator", "--workspace", str(ws), "run", str(spec)]
    both = [
        subprocess.Popen(
            [*command, "--no-progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for _ in range(2)
    ]
    results = [(proc.wait(timeout=120), *proc.communicate()) for proc in both]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 5], [(code, err[-300:]) for code, _, err in results]
    (_, _, lost) = next(result for result in results if result[0] == 5)
    lines = [line for line in lost.splitlines() if line.strip()]
    assert len(lines) == 1 and "race-" in lines[0] and "Traceback" not in lost
    listed = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--workspace", str(ws), "list", "--json"],
        capture_output=True,
        text=True,
        env=_env(),
        check=True,
    )
    jobs = json.loads(listed.stdout)
    assert [job["status"] for job in jobs] == ["completed"], jobs  # one job, run once


def test_two_runs_of_one_key_started_together_one_runs(tmp_path: Path) -> None:
    for round_ in range(3):
        _race(tmp_path, round_)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_two_hundred_races_for_one_key(tmp_path: Path) -> None:
    for round_ in range(200):
        _race(tmp_path, round_)


FAST = {"seed": 3, "latency_mean_s": 0.05, "latency_distribution": "uniform"}


def _kill_at_random_then_resume(tmp_path: Path, round_: int, items: int) -> None:
    """Run `items` images, SIGKILL the run at a random moment, resume it: nothing completed
    before the kill is lost or made again, the job ends completed, SQLite stays intact."""
    rng = random.Random(round_)
    folder = tmp_path / f"kill-{round_}"
    folder.mkdir()
    spec = write_spec(folder, items=items, options=FAST, key=f"kill-{round_}")
    ws = folder / "ws"
    with stopped_at_end(start_cli(ws, "run", str(spec), log=folder / "run")) as proc:
        job_id = wait_for("the job to be recorded", lambda: only_job_id(ws), proc)
        time.sleep(rng.uniform(0.0, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    before = {item.id: item for item in item_records(ws, job_id)}
    if any(item.status != "completed" for item in before.values()):  # else it finished first
        resumed = cli(ws, "resume", job_id, "--no-progress")
        assert resumed.returncode == 0, resumed.stderr[-500:]
    after = {item.id: item for item in item_records(ws, job_id)}
    for item_id, item in before.items():
        if item.status == "completed":  # kept as it was: same image, no new attempt
            now = after[item_id]
            assert (now.raw_sha256, now.attempt_count) == (item.raw_sha256, item.attempt_count)
    assert all(item.status == "completed" for item in after.values())
    database = sqlite3.connect(ws / "journal" / "journal.sqlite3")
    try:
        assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        database.close()


def test_a_run_killed_at_random_moments_resumes_with_nothing_lost(tmp_path: Path) -> None:
    for round_ in range(3):
        _kill_at_random_then_resume(tmp_path, round_, items=100)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_two_hundred_random_kills_of_a_200_image_job(tmp_path: Path) -> None:
    for round_ in range(200):
        _kill_at_random_then_resume(tmp_path, round_, items=200)

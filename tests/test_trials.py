"""Reliability trials with real processes: two `imagebatch run` of one key started at the same
moment, again and again. Exactly one runs the job each time; the other exits 5 (key conflict)
with one line and writes no job. A quick few rounds run in the suite; the long trial is
`pytest -m slow tests/test_trials.py` (200 rounds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .cli_helpers import _env, write_spec

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
def test_two_hundred_races_for_one_key(tmp_path: Path) -> None:
    for round_ in range(200):
        _race(tmp_path, round_)

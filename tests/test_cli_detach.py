"""`run SPEC --detach` and `start JOB --detach`: the job runs in a background process whose
output goes to the workspace's `logs/`; the command returns at once with the job id, and `watch`
follows the job to its end."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .cli_helpers import cli, ok, one_line_error, status, write_spec

SLOW = {"latency_mean_s": 1.0, "latency_distribution": "fixed"}


def test_a_detached_run_is_followed_to_its_end_by_watch(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    limits = {"concurrency": 2, "timeout_s": 20, "max_attempts": 2}
    spec = write_spec(tmp_path, items=8, options=SLOW, limits=limits)
    started = cli(ws, "run", str(spec), "--detach", "--json")
    document = json.loads(ok(started))
    job = document["id"]
    assert document["status"] in ("pending", "running")  # returned before its 4 s of work
    watched = cli(ws, "watch", job, "--json")
    assert watched.returncode == 0, watched.stderr
    assert json.loads(watched.stdout)["job"]["status"] == "completed"
    assert "no process is running it" not in watched.stderr
    log = ws / "logs" / f"{job}.log"
    assert Path(document["log"]) == log.resolve()
    assert f"job {job}: completed" in log.read_text(encoding="utf-8")


def test_start_detach_runs_a_created_job(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path, items=3, options={"latency_mean_s": 0.3})
    job = ok(cli(ws, "create", str(spec))).strip()
    started = cli(ws, "start", job, "--detach")
    assert ok(started).strip() == job
    assert f"imagebatch watch {job}" in started.stderr
    assert ok(cli(ws, "watch", job, "--json"))
    assert status(ws, job)["job"]["status"] == "completed"
    again = one_line_error(cli(ws, "start", job, "--detach"))
    assert "has finished" in again


def test_a_link_planted_at_the_log_is_refused_not_followed(tmp_path: Path) -> None:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    outside.write_bytes(b"not yours")
    spec = write_spec(tmp_path, items=1)
    job = ok(cli(ws, "create", str(spec))).strip()
    (ws / "logs").mkdir()
    (ws / "logs" / f"{job}.log").symlink_to(outside)
    refused = one_line_error(cli(ws, "start", job, "--detach"))
    assert f"{job}.log" in refused
    assert outside.read_bytes() == b"not yours"


def test_a_fifo_planted_at_the_log_is_refused_not_waited_on(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path, items=1)
    job = ok(cli(ws, "create", str(spec))).strip()
    (ws / "logs").mkdir()
    os.mkfifo(ws / "logs" / f"{job}.log")
    refused = one_line_error(cli(ws, "start", job, "--detach"))  # before, it hung here
    assert f"{job}.log" in refused

"""Jobs across processes (issue 7): `watch` follows another process's job, a runner whose lock was
cleared or taken over stops without touching the new owner's work, a SIGKILL loses at most the
images in flight. Real CLI processes, a real workspace, the fake API server over loopback."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from orchestrator.journal.store import DATABASE

from .cli_helpers import (
    cli,
    finish,
    item_records,
    journal_at,
    ok,
    only_job_id,
    running_items,
    start_cli,
    status,
    stopped_at_end,
    wait_for,
    write_spec,
)
from .conftest import ServeFakeApi, fake_api_env

SLOW = {"latency_mean_s": 0.6, "latency_distribution": "fixed"}


def _completed(ws: Path, job: str) -> int:
    return sum(item.status == "completed" for item in item_records(ws, job))


def test_watch_follows_a_job_in_another_process_to_its_end(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    items = [{"id": f"img-{n}", "prompt": f"picture {n}"} for n in range(8)]
    items[7]["prompt"] = "a dragon"  # refused last, long after watch attached: the job ends partial
    spec = write_spec(
        tmp_path,
        items=items,
        options={**SLOW, "reject_pattern": "dragon"},
        limits={"concurrency": 1, "timeout_s": 20, "max_attempts": 2},
    )
    log = tmp_path / "run"
    with stopped_at_end(start_cli(ws, "run", str(spec), log=log)) as runner:
        job = wait_for("the job", lambda: only_job_id(ws), runner)
        watched = cli(ws, "watch", "--json")  # no job named: the newest unfinished one
        code, _, _ = finish(runner, log)
    assert code == 3
    assert watched.returncode == 3, watched.stderr
    document = json.loads(watched.stdout)
    assert document["job"]["id"] == job and document["job"]["status"] == "partial"
    # off a terminal, watch logs one line per outcome it saw happen
    assert "img-7: failed: content_rejected" in watched.stderr


def test_watch_of_a_job_nobody_runs_says_how_to_start_it(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    job = ok(cli(ws, "create", str(write_spec(tmp_path)))).strip()
    result = cli(ws, "watch", job)
    assert result.returncode == 130
    assert f"no process is running it; `imagebatch start {job}`" in result.stderr


def test_watch_of_a_job_whose_process_is_killed_says_it_is_gone(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path, items=20, options=SLOW, limits={"concurrency": 1})
    log = tmp_path / "run"
    with stopped_at_end(start_cli(ws, "run", str(spec), log=log)) as runner:
        job = wait_for("the job", lambda: only_job_id(ws), runner)
        wait_for("an image done", lambda: _completed(ws, job) >= 1, runner)
        watcher = start_cli(ws, "watch", job, log=tmp_path / "watch")
        wait_for("watch attached", lambda: (tmp_path / "watch.err").stat().st_size > 0, watcher)
        runner.send_signal(signal.SIGKILL)  # not reaped yet (a zombie) while watch waits
        code, out, err = finish(watcher, tmp_path / "watch")
    assert code == 130, err
    assert f"job {job}: the process running it is gone (killed or crashed)" in err
    assert f"next: imagebatch resume {job}" in out
    with journal_at(ws) as journal:
        record = journal.job(job)
    assert record.run_s == 0.0  # the dead run never recorded its end: its time is counted so
    took = re.search(r"; (\S+); cost", out)
    assert took is not None and took.group(1) != "0.0s", out


def test_a_runner_whose_lock_is_cleared_stops_and_the_next_one_finishes(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(
        tmp_path,
        items=30,
        options=SLOW,
        limits={"concurrency": 2, "timeout_s": 30, "max_attempts": 2},
    )
    log = tmp_path / "first"
    with stopped_at_end(start_cli(ws, "run", str(spec), log=log)) as first:
        job = wait_for("the job", lambda: only_job_id(ws), first)
        wait_for("two completed images", lambda: _completed(ws, job) >= 2, first)
        ok(cli(ws, "clear-lock", "story-1"))
        code, _, err = finish(first, log)
    assert code == 6, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("imagebatch: error: lock for key 'story-1' was cleared")
    assert f"imagebatch status {job}" in lines[-1] and "Traceback" not in err
    with journal_at(ws) as journal:
        seq = journal.last_seq()
        assert journal.locks.holder("story-1") is None, "the stopped runner wrote nothing more"

    final = json.loads(ok(cli(ws, "resume", job, "--json")))
    assert final["job"]["status"] == "completed"
    with journal_at(ws) as journal:
        later = journal.events(after=seq, job_id=job)
    assert later and all(event.seq > seq for event in later)
    # nothing paid twice but the calls in flight when the lock was cleared (2 slots)
    attempts = sum(item["attempts"] for item in final["items"])
    assert attempts <= 30 + 2, attempts


def test_a_paused_runner_taken_over_writes_nothing_when_it_wakes(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(
        tmp_path,
        items=8,
        options=SLOW,
        limits={"concurrency": 2, "timeout_s": 30, "max_attempts": 2},
    )
    log = tmp_path / "paused"
    with stopped_at_end(start_cli(ws, "--stale-after", "3", "run", str(spec), log=log)) as old:
        job = wait_for("the job", lambda: only_job_id(ws), old)
        wait_for("a running item", lambda: running_items(ws, job), old)
        _pause_between_writes(old, ws)  # a laptop lid, a debugger: alive, silent
        try:
            # once its heartbeat is stale, another process takes the job over and finishes it
            wait_for("the lock to go stale", lambda: _heartbeat_age(ws) > 3.5)
            taken = cli(ws, "--stale-after", "3", "resume", job, "--json")
        finally:
            old.send_signal(signal.SIGCONT)
        code, _, err = finish(old, log)
    assert taken.returncode == 0, taken.stderr
    assert json.loads(taken.stdout)["job"]["status"] == "completed"
    assert code == 6, err
    # woken, it writes nothing: the lock is the new owner's, or already given back by it
    assert ("was taken over by job" in err or "was cleared" in err) and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("imagebatch: error: lock for key")
    data = status(ws, job)
    assert data["job"]["status"] == "completed", (
        "the old runner reset none of the new owner's items"
    )
    assert all(item["status"] == "completed" for item in data["items"])


def test_sigkill_loses_at_most_the_images_in_flight(
    tmp_path: Path, serve_fake_api: ServeFakeApi
) -> None:
    server = serve_fake_api(latency_s=0.05)
    ws = tmp_path / "ws"
    spec = tmp_path / "big.json"
    spec.write_text(
        json.dumps(
            {
                "key": "big",
                "provider": "openai",
                "model": "gpt-image-1",
                "defaults": {"size": "1024x1024", "quality": "low"},
                "limits": {"concurrency": 4, "timeout_s": 30, "max_attempts": 2},
                "output": {"format": "png", "max_size": "1024x1024", "thumbnail_px": 256},
                "items": [{"id": f"p{n}", "prompt": f"page {n}"} for n in range(60)],
            }
        ),
        encoding="utf-8",
    )
    log = tmp_path / "killed"
    with stopped_at_end(start_cli(ws, "run", str(spec), log=log, env=fake_api_env(server))) as proc:
        job = wait_for("the job", lambda: only_job_id(ws), proc)
        wait_for("some recorded images", lambda: _raw_count(ws, job) >= 8, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    served = sum(server.stats.successes.values())
    recorded = _raw_count(ws, job)
    assert served - recorded <= 4, (served, recorded)  # concurrency 4


def _pause_between_writes(proc: subprocess.Popen[str], ws: Path) -> None:
    """SIGSTOP `proc` at a moment it holds no journal transaction. (One paused inside a
    transaction keeps every other writer waiting until it goes on: SQLite's write lock.)"""
    for _ in range(100):
        proc.send_signal(signal.SIGSTOP)
        probe = sqlite3.connect(ws / "journal" / DATABASE, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.05)
        finally:
            probe.close()
    raise AssertionError("the runner never left its journal transaction")


def _heartbeat_age(ws: Path) -> float:
    with journal_at(ws) as journal:
        holder = journal.locks.holder("story-1")
        return journal.locks.heartbeat_age(holder) if holder else 0.0


def _raw_count(ws: Path, job: str) -> int:
    return sum(item.raw_path is not None for item in item_records(ws, job))


def test_stop_asks_the_process_running_a_job_to_finish_its_requests_and_stop(
    tmp_path: Path,
) -> None:
    ws = tmp_path / "ws"
    slower = {**SLOW, "latency_mean_s": 2.0}
    spec = write_spec(tmp_path, items=12, options=slower, limits={"concurrency": 2})
    log = tmp_path / "run"
    with stopped_at_end(start_cli(ws, "run", str(spec), log=log)) as runner:
        job = wait_for("the job", lambda: only_job_id(ws), runner)
        wait_for("two running items", lambda: len(running_items(ws, job)) == 2, runner)
        watcher = start_cli(ws, "watch", job, log=tmp_path / "watch")
        wait_for("watch attached", lambda: (tmp_path / "watch.err").stat().st_size > 0, watcher)
        said = ok(cli(ws, "stop", job))
        shown = ok(cli(ws, "status", job))  # the requests (2 s each) are still under way
        code, out, err = finish(runner, log)
        watched, _, watch_err = finish(watcher, tmp_path / "watch")
    assert watched == 130 and "is gone" not in watch_err, watch_err  # it stopped in order
    assert f"job {job}: stop requested" in said
    assert "stopping: its process lets the requests under way finish" in shown, shown
    assert code == 130, err
    assert "stop requested: the requests under way finish" in err  # the running process says so
    assert f"next: imagebatch resume {job}" in out
    records = item_records(ws, job)
    started = [item for item in records if item.attempts]
    assert len(started) >= 2 and all(item.status == "completed" for item in started)
    assert all(attempt.outcome == "ok" for item in started for attempt in item.attempts)
    assert any(item.status == "pending" and not item.attempts for item in records)
    again = ok(cli(ws, "stop", job))
    assert "no process is running it: nothing to stop" in again

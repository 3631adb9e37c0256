"""`imagebatch stats`: the numbers of a real job as text and JSON, every job of a workspace, and a
killed run listed as stuck."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from .cli_helpers import (
    cli,
    inproc,
    item_records,
    journal_at,
    ok,
    one_line_error,
    only_job_id,
    start_cli,
    status,
    stopped_at_end,
    wait_for,
    write_spec,
)


def _stats(ws: Path, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ok(inproc(ws, "stats", *args, "--json")))
    return data


def test_stats_of_a_job_agree_with_its_status(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(
        tmp_path,
        options={"rate_reject": 1.0},
        items=[{"id": "a", "prompt": "a cat"}, {"id": "b", "prompt": "a dog"}],
        limits={"concurrency": 2, "timeout_s": 20, "max_attempts": 2},
    )
    cli(ws, "run", str(spec), "--no-progress")
    job_id = only_job_id(ws)
    assert job_id is not None
    shown = status(ws, job_id)
    data = _stats(ws, job_id)
    assert data["job"]["id"] == job_id and data["stuck"] is None
    stats = data["stats"]
    assert stats["attempts"] == sum(item["attempts"] for item in shown["items"]) == 2
    assert stats["failures"] == {"content_rejected": 2}
    assert stats["success_rate"] == 0.0
    assert [row["count"] for row in stats["latency"]] == [2]
    text = ok(inproc(ws, "stats", job_id))
    assert f"job {job_id}" in text and "success rate 0.0%" in text
    assert "(2)" in text.split("failures: ")[1].splitlines()[0]


def test_stats_of_every_job_add_up(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    for key, count in (("one", 2), ("two", 3)):
        spec = write_spec(tmp_path, f"{key}.json", items=count, key=key)
        ok(cli(ws, "run", str(spec), "--no-progress"))
    data = _stats(ws)
    assert [job["stats"]["items"] for job in data["jobs"]] == [2, 3]
    assert data["total"]["jobs"] == 2 and data["total"]["counts"]["completed"] == 5
    assert data["total"]["success_rate"] == 1.0 and data["stuck"] == []
    text = ok(inproc(ws, "stats"))
    assert "2 jobs" in text and "stuck: none" in text


def test_stats_on_bad_input(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert ok(inproc(ws, "stats")) == "no jobs yet\n"
    assert not ws.exists()  # looking wrote nothing
    assert "no workspace" in one_line_error(inproc(ws, "stats", "nope"))
    spec = write_spec(tmp_path, items=1)
    ok(cli(ws, "run", str(spec), "--no-progress"))
    assert "nope" in one_line_error(inproc(ws, "stats", "nope"))


def test_a_killed_run_is_listed_as_stuck(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path, items=6, options={"latency_mean_s": 5.0})
    with stopped_at_end(start_cli(ws, "run", str(spec), log=tmp_path / "run")) as proc:
        job_id = wait_for("the job to be recorded", lambda: only_job_id(ws), proc)
        wait_for("a running item", lambda: any(i.attempts for i in item_records(ws, job_id)))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    data = _stats(ws)
    assert [job["id"] for job in data["stuck"]] == [job_id]
    assert data["stuck"][0]["pid"] == proc.pid
    one = _stats(ws, job_id)
    assert one["stuck"]["id"] == job_id
    # the dead run's time (and so its pace) stops at its last recorded change
    with journal_at(ws) as journal:
        record = journal.job(job_id)
    assert one["stats"]["run_s"] == record.run_time(record.updated_at)
    assert f"imagebatch resume {job_id}" in ok(inproc(ws, "stats"))

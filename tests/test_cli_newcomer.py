"""What a newcomer meets in the first ten minutes (issue 6): workspaces, keys, models, numbers.

Real CLI processes against real workspaces; the real providers talk to the fake API server over
loopback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from .cli_helpers import (
    _env,
    cli,
    finish,
    inproc,
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
from .conftest import ServeFakeApi, fake_api_env


def openai_spec(tmp_path: Path, prompts: list[str], **extra: Any) -> Path:
    data: dict[str, Any] = {
        "key": "fox",
        "provider": "openai",
        "model": "gpt-image-1.5",
        "defaults": {"size": "1024x1024", "quality": "low"},
        "limits": {"concurrency": 2, "timeout_s": 20, "max_attempts": 2},
        "output": {"format": "png", "max_size": "64x64", "thumbnail_px": 32},
        "items": [{"id": f"page-{n}", "prompt": p} for n, p in enumerate(prompts, 1)],
    }
    data.update(extra)
    path = tmp_path / "fox.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# ------------------------------------------------------------------ workspace


def test_a_workspace_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("mine", encoding="utf-8")
    message = one_line_error(cli(target, "run", str(write_spec(tmp_path))))
    assert "is a file" in message and str(target) in message
    assert target.read_text(encoding="utf-8") == "mine"


def test_a_workspace_whose_parent_is_missing_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "ws"
    message = one_line_error(cli(target, "demo"))
    assert "does not exist" in message
    assert not (tmp_path / "no").exists()


def test_an_unwritable_workspace_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The suite runs as root, for whom every folder is writable: the permission check is made to
    # answer as it does for an ordinary user with a read-only folder.
    parent = tmp_path / "shared"
    parent.mkdir()
    spec = write_spec(tmp_path)
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: Path(path) != parent and real_access(path, mode)
    )
    assert "not writable" in one_line_error(inproc(parent / "ws", "run", str(spec)))
    assert list(parent.iterdir()) == []


def test_a_workspace_that_cannot_be_made_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: Path, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)
    message = one_line_error(inproc(tmp_path / "ws", "run", str(write_spec(tmp_path))))
    assert "Permission denied" in message


# ------------------------------------------------------ keys before any write


def test_retry_without_the_key_changes_nothing(
    tmp_path: Path, serve_fake_api: ServeFakeApi
) -> None:
    server = serve_fake_api(reject_pattern="dragon")
    ws = tmp_path / "ws"
    spec = openai_spec(tmp_path, ["a fox in a red scarf", "a dragon over the sea"])
    with_key = _env(**fake_api_env(server))
    done = json.loads(ok(cli(ws, "run", str(spec), "--json", env=with_key), code=3))
    job = done["job"]["id"]
    with journal_at(ws) as journal:
        seq = journal.last_seq()

    no_key = {k: v for k, v in with_key.items() if k != "OPENAI_API_KEY"}
    message = one_line_error(cli(ws, "retry", job, env=no_key))
    assert "OPENAI_API_KEY" in message
    with journal_at(ws) as journal:
        assert journal.last_seq() == seq, "nothing written"
    assert status(ws, job)["job"]["status"] == "partial"

    server.configure(reject_pattern=None)
    final = json.loads(ok(cli(ws, "retry", job, "--json", env=with_key)))
    assert final["job"]["status"] == "completed"


def test_start_and_resume_without_the_key_write_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = openai_spec(tmp_path, ["a fox"])
    job = ok(cli(ws, "create", str(spec), env=_env(OPENAI_API_KEY="sk-x"))).strip()
    no_key = {k: v for k, v in _env().items() if k != "OPENAI_API_KEY"}
    for command in (["start", job], ["resume", job]):
        assert "OPENAI_API_KEY" in one_line_error(cli(ws, *command, env=no_key))
    with journal_at(ws) as journal:
        assert journal.job(job).started_at is None
        assert journal.locks.holder("fox") is None


# --------------------------------------------------------------------- models


def test_an_unknown_model_names_the_known_ones(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = openai_spec(tmp_path, ["a fox"], model="gpt-imag-1")
    message = one_line_error(cli(ws, "create", str(spec), env=_env(OPENAI_API_KEY="sk-x")))
    assert "gpt-imag-1" in message and "gpt-image-1.5" in message
    assert "--allow-unknown-model" in message
    assert not ws.exists()
    allowed = cli(ws, "create", str(spec), "--allow-unknown-model", env=_env(OPENAI_API_KEY="k"))
    job = ok(allowed).strip()
    assert status(ws, job)["job"]["model"] == "gpt-imag-1"


def test_a_dated_snapshot_of_a_known_model_is_known(tmp_path: Path) -> None:
    spec = openai_spec(tmp_path, ["a fox"], model="gpt-image-1.5-2025-12-16")
    ok(cli(tmp_path / "ws", "create", str(spec), env=_env(OPENAI_API_KEY="sk-x")))


def test_another_provider_on_the_command_line_leaves_the_spec_options_out(
    tmp_path: Path, serve_fake_api: ServeFakeApi
) -> None:
    server = serve_fake_api()
    spec = write_spec(tmp_path, model="mock-1")  # mock options and model
    result = cli(tmp_path / "ws", "run", str(spec), "--provider", "gemini", "--json",
                 env=_env(**fake_api_env(server)))  # fmt: skip
    assert json.loads(ok(result))["job"]["provider"] == "gemini"
    assert "provider_options and model (written for mock) are not used" in result.stderr


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_the_demo_runs_on_a_real_provider(
    tmp_path: Path, serve_fake_api: ServeFakeApi, provider: str
) -> None:
    server = serve_fake_api()
    result = cli(tmp_path / "ws", "demo", "--provider", provider, "--count", "3", "--json",
                 env=_env(**fake_api_env(server)))  # fmt: skip
    done = json.loads(ok(result))
    assert done["job"]["status"] == "completed" and done["job"]["provider"] == provider
    assert server.stats.requests >= 3


# -------------------------------------------------------------------- numbers


def test_cost_shows_in_the_summary_status_and_list(
    tmp_path: Path, serve_fake_api: ServeFakeApi
) -> None:
    server = serve_fake_api()
    ws = tmp_path / "ws"
    spec = openai_spec(tmp_path, ["a fox", "a hare"])
    summary = ok(cli(ws, "run", str(spec), env=_env(**fake_api_env(server))))
    cost = re.search(r"cost \$(\d+\.\d+)", summary)
    assert cost and float(cost.group(1)) > 0, summary
    job = only_job_id(ws)
    assert job is not None
    assert f"cost ${cost.group(1)}" in ok(inproc(ws, "status", job))
    assert f"${cost.group(1)}" in ok(inproc(ws, "list"))
    items = status(ws, job)["items"]
    assert all(item["cost_usd"] and item["cost_usd"] > 0 for item in items)


def test_a_resume_reports_this_run_and_the_job_in_all(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(
        tmp_path,
        items=5,
        options={"latency_mean_s": 1.0, "latency_distribution": "fixed"},  # Ctrl-C lands mid-run
        limits={"concurrency": 1, "timeout_s": 30, "max_attempts": 2},
    )
    log = tmp_path / "run"
    with stopped_at_end(start_cli(ws, "run", str(spec), log=log)) as proc:
        job = wait_for("the job", lambda: only_job_id(ws), proc)
        wait_for("a completed item", lambda: _completed(ws, job), proc)
        proc.send_signal(signal.SIGINT)
        assert finish(proc, log)[0] == 130
    first_run = status(ws, job)["job"]["run_s"]
    assert first_run > 0
    time.sleep(1.0)  # a gap between the runs that is no run time

    result = cli(ws, "resume", job)
    summary = ok(result)
    data = status(ws, job)["job"]
    assert data["status"] == "completed"
    span = data["finished_at"] - data["started_at"]
    assert data["run_s"] < span - 0.5, "run time leaves out the gap between runs"
    assert "this run" in summary and "in all" in summary
    # no automatic retry happened: the interrupted item's next attempt is a resume
    assert "; 0 retries;" in summary
    assert all(item["retries"] == 0 for item in status(ws, job)["items"])


def _completed(ws: Path, job: str) -> bool:
    return any(item.status == "completed" for item in item_records(ws, job))


def test_an_item_that_never_reached_the_provider_shows_no_attempt(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ref = tmp_path / "ref.png"
    Image.new("RGB", (8, 8), "teal").save(ref)
    spec = write_spec(tmp_path, items=[{"id": "a", "prompt": "a fox", "references": ["ref.png"]}])
    job = ok(cli(ws, "create", str(spec))).strip()
    ref.unlink()  # the reference disappears between create and start
    ok(cli(ws, "start", job), code=4)
    (item,) = status(ws, job)["items"]
    assert item["status"] == "failed" and item["attempts"] == 0
    assert re.search(r"a\s+failed\s+0 att", ok(inproc(ws, "status", job)))


def test_ctrl_c_before_any_item_ran_leaves_nothing_running(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(
        tmp_path,
        items=3,
        options={"latency_mean_s": 5.0, "latency_distribution": "fixed"},
        limits={"concurrency": 1, "timeout_s": 30, "max_attempts": 2},
    )
    log = tmp_path / "run"
    with stopped_at_end(start_cli(ws, "run", str(spec), log=log)) as proc:
        job = wait_for("the job", lambda: only_job_id(ws), proc)
        wait_for("a running item", lambda: running_items(ws, job), proc)
        proc.send_signal(signal.SIGTERM)
        code, _, err = finish(proc, log)
    assert code == 143 and "stopped by SIGTERM" in err
    attempts = {item["id"]: item["attempts"] for item in status(ws, job)["items"]}
    assert sorted(attempts.values()) == [0, 0, 1]  # the queued ones were never sent

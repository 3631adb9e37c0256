"""Webhooks through the `imagebatch` command line: a job run as a real process POSTs to a receiver
in this test, and the signing secret is nowhere in the workspace, the outputs or the bodies."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from pathlib import Path

import pytest

from orchestrator.webhooks.signing import PREFIX

from .cli_helpers import FAST, _env, cli, inproc
from .orchestrator.webhook_receiver import Receiver, new_secret, receiver


def _write_spec(path: Path, url: str, key: str = "hooked") -> Path:
    spec = {
        "key": key,
        "provider": "mock",
        "provider_options": FAST,
        "webhook": {"url": url, "secret_env": "HOOK_SECRET"},
        "items": [{"id": f"p{n}", "prompt": f"picture {n}"} for n in range(3)],
    }
    path.write_text(json.dumps(spec))
    return path


def _run_against(
    tmp_path: Path, secret: str, answers: list[int | str] | None = None, *, alive: bool = True
) -> tuple[Receiver, subprocess.CompletedProcess[str]]:
    """`imagebatch run` of a 3-image spec whose webhook is a receiver in this process (or, with
    `alive` False, where one was: nothing listens there any more)."""
    env = _env(HOOK_SECRET=secret, IMAGEBATCH_ALLOW_LOCAL_URLS="1")

    async def run() -> tuple[Receiver, subprocess.CompletedProcess[str]]:
        async with receiver(secret, answers) as hook:
            spec = _write_spec(tmp_path / "spec.json", hook.url)
            if alive:
                return hook, await asyncio.to_thread(
                    cli, tmp_path / "ws", "run", str(spec), "--json", env=env
                )
        return hook, await asyncio.to_thread(
            cli, tmp_path / "ws", "run", str(spec), "--json", env=env
        )

    return asyncio.run(run())


def test_the_secret_never_leaves_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = new_secret()
    hook, ran = _run_against(tmp_path, secret, answers=[500, 500])
    assert ran.returncode == 0, ran.stderr
    assert hook.received[0].answer == 500 and hook.received[0].type == "job.started"
    assert all(got.error is None for got in hook.received)
    ws = tmp_path / "ws"
    job_id = json.loads(ran.stdout)["job"]["id"]
    outputs = [ran.stdout, ran.stderr]
    monkeypatch.setenv("HOOK_SECRET", secret)
    for args in (("status", job_id, "--json"), ("status", job_id), ("webhooks", job_id)):
        shown = inproc(ws, *args)
        assert shown.returncode == 0, shown.stderr
        outputs += [shown.stdout, shown.stderr]
    # refused before anything is written: a local URL, then a malformed secret
    local = _write_spec(tmp_path / "local.json", hook.url, key="local")
    refused = inproc(ws, "run", str(local))
    assert refused.returncode == 2 and "IMAGEBATCH_ALLOW_LOCAL_URLS=1" in refused.stderr
    monkeypatch.setenv("IMAGEBATCH_ALLOW_LOCAL_URLS", "1")
    monkeypatch.setenv("HOOK_SECRET", secret.removeprefix(PREFIX))  # without its prefix
    malformed = inproc(ws, "run", str(local))
    assert malformed.returncode == 2 and "(whsec_...)" in malformed.stderr
    outputs += [refused.stdout, refused.stderr, malformed.stdout, malformed.stderr]
    jobs = json.loads(inproc(ws, "list", "--json").stdout)
    assert [job["key"] for job in jobs] == ["hooked"]  # the refused ones were not recorded

    needles = [secret.encode(), secret.removeprefix(PREFIX).encode()]
    key = base64.b64decode(secret.removeprefix(PREFIX))
    bodies = [got.body + json.dumps(got.headers).encode() for got in hook.received]
    for blob in [text.encode() for text in outputs] + bodies:
        for needle in needles:
            assert needle not in blob
    files = [path for path in ws.rglob("*") if path.is_file()]
    assert any(path.name.startswith("journal.sqlite3") for path in files)
    for path in files:
        data = path.read_bytes()
        for needle in [*needles, key]:
            assert needle not in data, path


def test_a_dead_receiver_never_fails_the_job_and_its_events_are_listed(tmp_path: Path) -> None:
    secret = new_secret()
    _, ran = _run_against(tmp_path, secret, alive=False)  # every POST is refused at once
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["job"]["status"] == "completed"
    assert "not delivered" in ran.stderr
    job_id = json.loads(ran.stdout)["job"]["id"]
    listed = inproc(tmp_path / "ws", "webhooks", job_id, "--json")
    assert listed.returncode == 0, listed.stderr
    undelivered = json.loads(listed.stdout)["undelivered"]
    types = [message["body"]["type"] for message in undelivered]
    assert types[0] == "job.started" and types[-1] == "job.finished"
    assert types.count("item.completed") == 3
    assert "Cannot connect" in undelivered[0]["last_error"]
    text = inproc(tmp_path / "ws", "webhooks", job_id)
    assert f"webhook messages not delivered to {json.loads(listed.stdout)['url']}" in text.stdout
    assert inproc(tmp_path / "ws", "webhooks", "no-such-job").returncode == 2
    status = json.loads(inproc(tmp_path / "ws", "status", job_id, "--json").stdout)
    assert status["job"]["webhook"]["undelivered"] == len(undelivered)
    assert status["job"]["webhook"]["events"][0] == "job.started"
    line = f"{len(undelivered)} not delivered: `imagebatch webhooks {job_id}`"
    assert line in inproc(tmp_path / "ws", "status", job_id).stdout

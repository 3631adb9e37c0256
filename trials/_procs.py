"""What the process trials share: running `imagebatch` as a user would (real processes), specs for
the mock and for the fake server, and reads of a workspace's journal from the outside.

Commands run as `python -m orchestrator --workspace WS ...` with bounded waits. The fake server
runs on its own loop in a thread of this process (`ServerThread`), so a trial can read its
request log (arrival and answer times) while the CLI talks to it over loopback HTTP.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orchestrator.events import Event
from orchestrator.journal import DiskJournal
from orchestrator.records import ItemRecord, JobRecord
from orchestrator.storage import ENV_VAR
from orchestrator.testing.fakeserver import FakeServerOptions
from orchestrator.testing.fakeserver.thread import ServerThread

TIMEOUT_S = 120
WAIT_S = 60.0
KEY = "sk-trial-fake-key-0123456789"


def env(**extra: str) -> dict[str, str]:
    """This process's environment without a workspace variable, unbuffered, plus `extra`."""
    out = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    out["PYTHONUNBUFFERED"] = "1"
    out.update(extra)
    return out


def fake_env(thread: ServerThread, key: str = KEY) -> dict[str, str]:
    """Variables that point both real providers at the fake server of `thread`."""
    url = thread.server.url
    return env(
        OPENAI_API_KEY=key, OPENAI_BASE_URL=f"{url}/v1", GEMINI_API_KEY=key, GEMINI_BASE_URL=url
    )


def command(ws: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", "--workspace", str(ws), *args]


def cli(
    ws: Path, *args: str, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `imagebatch --workspace ws args...` to its end."""
    return subprocess.run(
        command(ws, *args),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=environ or env(),
        check=False,
    )


def start(
    ws: Path, *args: str, log: Path, environ: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start `imagebatch --workspace ws --no-progress args...`; output goes next to `log`."""
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        return subprocess.Popen(
            command(ws, "--no-progress", *args),
            stdout=out,
            stderr=err,
            text=True,
            env=environ or env(),
        )


def finish(proc: subprocess.Popen[str], log: Path) -> tuple[int, str]:
    """Wait for `proc` (bounded); its exit code and stderr."""
    code = proc.wait(timeout=TIMEOUT_S)
    return code, log.with_suffix(".err").read_text()


@contextlib.contextmanager
def reaped(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Kill `proc` (and wake it, if stopped) if the trial leaves early: nothing outlives it."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=TIMEOUT_S)


@contextlib.contextmanager
def fake_server(**options: Any) -> Iterator[ServerThread]:
    """A fake OpenAI / Gemini server on 127.0.0.1 (a free port), closed at the end."""
    thread = ServerThread(FakeServerOptions(**options))
    try:
        yield thread
    finally:
        thread.close()


def server_log(thread: ServerThread) -> list[dict[str, Any]]:
    """The fake server's request log: endpoint, prompt, outcome, `arrived` and `answered`."""
    return thread.call(thread.log())


def mock_spec(folder: Path, key: str, *, items: int, options: dict[str, Any]) -> Path:
    """A mock spec of `items` small PNGs."""
    return write_spec(
        folder,
        {
            "key": key,
            "provider": "mock",
            "provider_options": options,
            "defaults": {"size": "64x64"},
            "limits": {"concurrency": 4, "timeout_s": 20, "max_attempts": 2},
            "output": {"format": "png", "thumbnail_px": 32},
        },
        items=items,
    )


def openai_spec(
    folder: Path, key: str, *, items: int | list[dict[str, Any]], limits: dict[str, Any]
) -> Path:
    """A spec for the OpenAI provider (pointed at the fake server by `fake_env`), small images."""
    return write_spec(
        folder,
        {
            "key": key,
            "provider": "openai",
            "model": "dall-e-2",
            "defaults": {"size": "256x256"},
            "limits": limits,
            "output": {"format": "png", "thumbnail_px": 32},
            "cache": False,
        },
        items=items,
    )


def write_spec(folder: Path, head: dict[str, Any], *, items: int | list[dict[str, Any]]) -> Path:
    if isinstance(items, int):
        items = [{"id": f"img-{n}", "prompt": f"picture number {n}"} for n in range(1, items + 1)]
    path = folder / f"{head['key']}.json"
    path.write_text(json.dumps({**head, "items": items}), encoding="utf-8")
    return path


@contextlib.contextmanager
def journal_at(ws: Path) -> Iterator[DiskJournal]:
    journal = DiskJournal(ws / "journal")
    try:
        yield journal
    finally:
        journal.close()


def items(ws: Path, job_id: str) -> list[ItemRecord]:
    with journal_at(ws) as journal:
        return journal.items(job_id)


def job(ws: Path, job_id: str) -> JobRecord:
    with journal_at(ws) as journal:
        return journal.job(job_id)


def events(ws: Path, job_id: str) -> list[Event]:
    with journal_at(ws) as journal:
        return journal.events(after=0, job_id=job_id)


def only_job_id(ws: Path) -> str | None:
    """The workspace's only job's id, once a running process has recorded it."""
    if not (ws / "journal").is_dir():
        return None
    with journal_at(ws) as journal:
        jobs = journal.jobs()
    return jobs[0].id if jobs else None


def integrity(ws: Path) -> str:
    """SQLite's own integrity check of the journal: `ok` when intact."""
    database = sqlite3.connect(ws / "journal" / "journal.sqlite3")
    try:
        return str(database.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        database.close()


def wait_for(
    what: str, condition: Callable[[], Any], proc: subprocess.Popen[str] | None = None
) -> Any:
    """Poll `condition` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (code {proc.returncode}) before {what}")
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


def one_line(err: str) -> str | None:
    """The only line of `err`, or None when it has several lines or a traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    if len(lines) != 1 or "Traceback" in err:
        return None
    return lines[0]


def tally(failures: list[str], limit: int = 5) -> tuple[str, ...]:
    """The first `limit` failure lines, and how many more there were."""
    shown = failures[:limit]
    if len(failures) > limit:
        shown.append(f"... and {len(failures) - limit} more")
    return tuple(shown)

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
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from orchestrator.storage import ENV_VAR
from orchestrator.testing import outside
from orchestrator.testing.fakeserver import FakeServerOptions
from orchestrator.testing.fakeserver.thread import ServerThread
from orchestrator.testing.outside import events, integrity, items, job, journal_at, only_job_id

__all__ = [
    "KEY",
    "TIMEOUT_S",
    "WAIT_S",
    "cli",
    "command",
    "env",
    "events",
    "fake_env",
    "fake_server",
    "finish",
    "integrity",
    "items",
    "job",
    "journal_at",
    "mock_spec",
    "one_line",
    "only_job_id",
    "openai_spec",
    "reaped",
    "server_log",
    "start",
    "tally",
    "wait_for",
    "write_spec",
]

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


def reaped(proc: subprocess.Popen[str]) -> contextlib.AbstractContextManager[subprocess.Popen[str]]:
    """Kill `proc` (SIGKILL wakes a stopped one too) if the trial leaves early."""
    return outside.reaped(proc, limit_s=TIMEOUT_S)


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


def wait_for(
    what: str, condition: Callable[[], Any], proc: subprocess.Popen[str] | None = None
) -> Any:
    """Poll `condition` until it returns something truthy (bounded)."""
    return outside.wait_for(what, condition, proc, limit_s=WAIT_S, every_s=0.02)


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

"""Helpers for tests that drive the `imagebatch` command line as real processes.

Commands that write run as `python -m orchestrator --workspace <tmp>/ws ...` subprocesses with a
bounded timeout; quick read-only calls go through `orchestrator.cli.main` in this process
(`inproc`). Waits poll the journal with a bounded deadline; nothing asserts how long anything took.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.cli import main as cli_main
from orchestrator.records import ItemRecord
from orchestrator.storage import ENV_VAR
from orchestrator.testing import outside
from orchestrator.testing.outside import items
from orchestrator.testing.outside import journal_at as journal_at  # for the tests
from orchestrator.testing.outside import only_job_id as only_job_id

TIMEOUT_S = 60
WAIT_S = 30.0
FAST = {"seed": 1, "latency_mean_s": 0.02, "latency_distribution": "fixed"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def cli(
    ws: Path | None, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m orchestrator [--workspace ws] args...` to its end."""
    head = [sys.executable, "-m", "orchestrator"]
    if ws is not None:
        head += ["--workspace", str(ws)]
    return subprocess.run(
        [*head, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env or _env(),
        cwd=cwd,
        check=False,
    )


def inproc(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The same CLI called in this process: quick, for the many bad-input cases."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli_main(["--workspace", str(ws), *args])
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def start_cli(
    ws: Path, *args: str, log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """Start `python -m orchestrator --workspace ws args...`; stdout and stderr go next to `log`;
    `env` adds variables."""
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "--workspace", str(ws), "--no-progress", *args],
            stdout=out,
            stderr=err,
            text=True,
            env=_env(**(env or {})),
            cwd=cwd,
        )
    return proc


def finish(proc: subprocess.Popen[str], log: Path) -> tuple[int, str, str]:
    """Wait for `proc` (bounded) and return its code, stdout and stderr."""
    code = proc.wait(timeout=TIMEOUT_S)
    out = log.with_suffix(".out").read_text()
    err = log.with_suffix(".err").read_text()
    return code, out, err


def stopped_at_end(
    proc: subprocess.Popen[str],
) -> contextlib.AbstractContextManager[subprocess.Popen[str]]:
    """Kill `proc` if the test leaves early, so no process outlives it."""
    return outside.reaped(proc, limit_s=TIMEOUT_S)


def ok(result: subprocess.CompletedProcess[str], code: int = 0) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def status(ws: Path, job: str | None = None) -> dict[str, Any]:
    """`status [job] --json`, read in this process (the writers run in their own)."""
    data: dict[str, Any] = json.loads(ok(inproc(ws, "status", *([job] if job else []), "--json")))
    return data


def items_by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in data["items"]}


def write_spec(
    tmp_path: Path,
    name: str = "spec.json",
    *,
    items: list[dict[str, Any]] | int = 3,
    options: dict[str, Any] | None = None,
    **extra: Any,
) -> Path:
    """A small, fast mock spec (64x64 PNGs); `extra` sets or replaces top-level fields."""
    if isinstance(items, int):
        items = [{"id": f"img-{n}", "prompt": f"picture number {n}"} for n in range(1, items + 1)]
    data: dict[str, Any] = {
        "key": "story-1",
        "provider": "mock",
        "provider_options": {**FAST, **(options or {})},
        "defaults": {"size": "64x64"},
        "limits": {"concurrency": 4, "timeout_s": 20, "max_attempts": 2},
        "output": {"format": "png", "thumbnail_px": 32},
        "items": items,
    }
    data.update(extra)
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def item_records(ws: Path, job_id: str) -> list[ItemRecord]:
    return items(ws, job_id)


def wait_for(
    what: str, condition: Callable[[], Any], proc: subprocess.Popen[Any] | None = None
) -> Any:
    """Poll `condition` until it returns something truthy (bounded; not a timing assertion)."""
    return outside.wait_for(what, condition, proc, limit_s=WAIT_S)


def running_items(ws: Path, job_id: str) -> list[str]:
    return [item.id for item in item_records(ws, job_id) if item.status == "running"]


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("imagebatch: error: "), lines[0]
    return lines[0]

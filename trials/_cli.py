"""What the hostile-input trials share: the CLI run as a user runs it (a subprocess with a
timeout), specs written to files, and a picture of a folder tree that follows no link, to tell
whether anything was written where it should not be."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "FAST",
    "Outcome",
    "base_env",
    "cli",
    "cli_measured",
    "error_line",
    "in_parallel",
    "one_line",
    "snapshot",
    "spread",
    "write_spec",
]

T = TypeVar("T")
R = TypeVar("R")
TIMEOUT_S = 60.0
FAST = {"seed": 1, "latency_mean_s": 0.01, "latency_distribution": "fixed"}
"""Mock options for images that come at once."""


@dataclass(frozen=True)
class Outcome:
    """How one CLI call ended: its exit code (None if it outlived its timeout and was killed)."""

    code: int | None
    out: str
    err: str

    @property
    def hung(self) -> bool:
        return self.code is None


def base_env(**extra: str) -> dict[str, str]:
    """The environment without the user's imagebatch and provider settings, plus `extra`."""
    drop = ("IMAGEBATCH_", "OPENAI_", "GEMINI_", "GOOGLE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def cli(
    ws: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT_S,
    cwd: Path | None = None,
) -> Outcome:
    """`python -m orchestrator --workspace ws --no-progress args...` to its end, or killed
    (with its process group) after `timeout` seconds."""
    command = [sys.executable, "-m", "orchestrator", "--workspace", str(ws), "--no-progress"]
    proc = subprocess.Popen(
        [*command, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=dict(env) if env is not None else base_env(),
        cwd=cwd,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        return Outcome(proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return Outcome(None, out, err)


def cli_measured(
    ws: Path, *args: str, env: Mapping[str, str], timeout: float = TIMEOUT_S
) -> tuple[Outcome, int]:
    """`cli`, and the peak resident memory of its process in bytes (its own `ru_maxrss`)."""
    command = [sys.executable, "-m", "orchestrator", "--workspace", str(ws), "--no-progress"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [*command, *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=dict(env),
            start_new_session=True,
        )
        timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        texts = []
        for file in (out, err):
            file.seek(0)
            texts.append(file.read().decode("utf-8", "replace"))
    hung = code == -signal.SIGKILL
    return Outcome(None if hung else code, *texts), usage.ru_maxrss * 1024


def in_parallel(work: Iterable[T], run: Callable[[T], R], workers: int = 3) -> list[R]:
    """`run(x)` for each `x` of `work`, a few subprocesses at a time, results in order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, work))


def spread(things: list[T], count: int) -> list[T]:
    """`count` of `things`, spread evenly over the list (all of them if `count` is larger)."""
    count = min(count, len(things))
    return [things[index * len(things) // count] for index in range(count)]


def one_line(err: str) -> str | None:
    """The one line a refused command printed on stderr, or None if it printed a traceback,
    nothing, or several lines."""
    lines = [line for line in err.splitlines() if line.strip()]
    if len(lines) != 1 or "Traceback" in err:
        return None
    return lines[0]


def error_line(err: str) -> str | None:
    """The one `imagebatch: error:` line of a command that may have said other things first
    (`run` names the job before it starts it), or None if there is a traceback or not one."""
    lines = [line for line in err.splitlines() if line.startswith("imagebatch: error:")]
    if len(lines) != 1 or "Traceback" in err:
        return None
    return lines[0]


def write_spec(folder: Path, name: str, spec: Mapping[str, Any]) -> Path:
    """`spec` as JSON in `folder/name`."""
    path = folder / name
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under `root` (itself included), by relative path: its kind and, for a
    regular file, the SHA-256 of its bytes. Links are described, never followed."""
    found: dict[str, str] = {}
    if not os.path.lexists(root):
        return found
    for here, dirs, files in os.walk(root, followlinks=False):
        for name in [".", *dirs, *files]:
            path = Path(here) / name
            found[str(path.relative_to(root))] = _describe(path)
    return found


def _describe(path: Path) -> str:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return "link -> " + os.readlink(path)
    if stat.S_ISDIR(info.st_mode):
        return "folder"
    if stat.S_ISREG(info.st_mode):
        return "file " + hashlib.sha256(path.read_bytes()).hexdigest()
    return f"special {stat.S_IFMT(info.st_mode):o}"

"""What a benchmark prints and records: a markdown table of metrics against their targets,
the machine it ran on, and a dated section appended to `RESULTS.md`."""

from __future__ import annotations

import datetime
import importlib.util
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Row", "Run", "append_section", "describe_run", "render_run", "render_table"]

REPO = Path(__file__).resolve().parent.parent
"""The checkout holding this package: children run here, so its `orchestrator` is measured."""


@dataclass(frozen=True)
class Row:
    """One line of the table. A row without a target is information, neither pass nor fail."""

    metric: str
    value: str
    target: str = "-"
    passed: bool | None = None

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "-"
        return "pass" if self.passed else "**FAIL**"


@dataclass(frozen=True)
class Run:
    """Where and when the figures were taken."""

    date: str
    commit: str
    python: str
    machine: str
    load: str
    """The 1, 5 and 15 minute load averages when the run started: other work skews figures."""


def describe_run() -> Run:
    return Run(
        date=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        commit=_commit(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        machine=f"{platform.platform()}, {_cpu_model()}, {os.cpu_count()} CPUs",
        load=_load(),
    )


def render_table(rows: list[Row]) -> str:
    lines = ["| metric | value | target | result |", "|---|---:|---:|---|"]
    lines += [f"| {r.metric} | {r.value} | {r.target} | {r.verdict} |" for r in rows]
    return "\n".join(lines)


def render_run(run: Run, *, when: bool = True) -> str:
    """The run as a markdown list; `when=False` leaves out the date and commit (the heading
    of an appended section already shows them)."""
    lines = [f"- date: {run.date}", f"- commit: `{run.commit}`"] if when else []
    lines += [
        f"- Python: {run.python}",
        f"- machine: {run.machine}",
        f"- load average at start: {run.load}",
    ]
    return "\n".join(lines)


def append_section(path: Path, title: str, run: Run, body: str) -> None:
    """Append `## title: date, commit`, the machine and `body` to the file (made if missing)."""
    heading = f"## {title}: {run.date}, commit {run.commit}"
    text = f"{heading}\n\n{render_run(run, when=False)}\n\n{body}\n"
    exists = path.exists() and path.stat().st_size > 0
    with path.open("a", encoding="utf-8") as file:
        file.write(f"\n{text}" if exists else text)


def _commit() -> str:
    """The short commit of the checkout, with `+dirty` if tracked files differ from it.

    The commit is read where `orchestrator` is imported from, which is the code measured.
    """
    head = _git("rev-parse", "--short", "HEAD")
    if head is None:
        return "unknown"
    changed = _git("status", "--porcelain", "--untracked-files=no")
    return f"{head}+dirty" if changed else head


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=_code_root(), capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def _code_root() -> Path:
    spec = importlib.util.find_spec("orchestrator")
    if spec is None or spec.origin is None:
        return REPO
    return Path(spec.origin).resolve().parent.parent


def _load() -> str:
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "unknown CPU"
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown CPU"

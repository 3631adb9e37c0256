"""Running trials and printing their table."""

from __future__ import annotations

import platform
import subprocess
import tempfile
import time
import traceback
from pathlib import Path

from .registry import Result, Rounds, Trial, all_trials

__all__ = ["run_one", "run_trials"]


def run_one(trial: Trial, *, full: bool) -> Result:
    """Run `trial` in a fresh temporary folder; an exception is a failed trial, not a crash."""
    with tempfile.TemporaryDirectory(prefix="imagebatch-trial-") as folder:
        try:
            return trial.run(Rounds(full=full, folder=Path(folder)))
        except Exception as error:  # the table reports it; the other trials still run
            lines = traceback.format_exception_only(error)
            return Result(
                measured=f"raised {type(error).__name__}",
                passed=False,
                details=tuple(line.rstrip() for line in lines),
            )


def run_trials(*, full: bool, only: list[str], write: str | None) -> bool:
    chosen = [t for t in all_trials() if not only or any(part in t.name for part in only)]
    rows = []
    for trial in chosen:
        started = time.monotonic()
        result = run_one(trial, full=full)
        rows.append((trial, result, time.monotonic() - started))
        mark = "pass" if result.passed else "FAIL"
        print(f"{mark}  {trial.name}: {result.measured}", flush=True)
        for line in result.details:
            print(f"      {line}", flush=True)
    table = _table(rows, full=full)
    print()
    print(table)
    if write:
        with open(write, "a", encoding="utf-8") as out:
            out.write("\n" + table)
    if not rows:
        print("no trial matched: nothing was tried")
    return bool(rows) and all(result.passed for _, result, _ in rows)


def _table(rows: list[tuple[Trial, Result, float]], *, full: bool) -> str:
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        or "unknown"
    )
    lines = [
        f"## Trials ({'full' if full else 'quick'} rounds): "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}",
        "",
        f"- machine: {platform.platform()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "",
        "| trial | pass figure | measured | result | time |",
        "|---|---|---|---|---:|",
    ]
    for trial, result, seconds in rows:
        mark = "pass" if result.passed else "**FAIL**"
        lines.append(
            f"| {trial.name} | {trial.figure} | {result.measured} | {mark} | {seconds:.0f} s |"
        )
    return "\n".join(lines) + "\n"

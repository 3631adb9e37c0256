"""Crash loop: an item whose work kills the process three times ends `failed` ("crash loop")
instead of killing every resume, and the other items finish.

Each run is a real process (the Python API, as a user's script would hold it) whose provider
kills its own process with SIGKILL when it is asked for the item `bomb`: a decoder that takes
the interpreter down, say. The trial runs it again and again, as a user resuming after each
death would, until a run ends by itself.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from .registry import Result, Rounds, trial

DEATHS_ALLOWED = 3
"""`journal.recovery.CRASH_LIMIT`: runs that may die with an item in flight."""
TIMEOUT_S = 120

RUN = r"""
import asyncio, json, os, signal, sys
from pathlib import Path
from orchestrator import Orchestrator, Workspace
from orchestrator.testing.scripted import ScriptedProvider, make_spec

class Bomb(ScriptedProvider):
    async def generate(self, request):
        if request.item_id == "bomb":
            os.kill(os.getpid(), signal.SIGKILL)
        return await super().generate(request)

async def main(root):
    provider = Bomb()
    async with Orchestrator(Workspace(root), providers={"scripted": provider}) as orch:
        jobs = await orch.jobs()
        if jobs:
            job = await orch.start(jobs[0].id)
        else:
            spec = make_spec(4, key="crash-loop", concurrency=1)
            spec = spec.model_copy(update={"items": [
                item.model_copy(update={"id": "bomb" if n == 2 else item.id})
                for n, item in enumerate(spec.items)
            ]})
            job = await orch.submit(spec)
        final = await job.wait()
        items = {item.id: [item.status.value, item.error.kind if item.error else None]
                 for item in await job.items()}
        print(json.dumps({"job": final.status.value, "items": items,
                          "calls": [call.item_id for call in provider.calls]}))

asyncio.run(main(Path(sys.argv[1])))
"""


@trial(
    "crash loop",
    "an item whose work kills the process 3 times ends failed (crash_loop); the rest complete",
)
def crash_loop(rounds: Rounds) -> Result:
    problems: list[str] = []
    deaths_seen: list[int] = []
    for number in range(rounds.count(1, 5)):
        deaths, outcome = _until_a_run_ends(rounds.folder / f"ws-{number}")
        deaths_seen.append(deaths)
        problems.extend(f"round {number}: {problem}" for problem in _check(deaths, outcome))
    measured = f"runs killed before the item ended failed: {sorted(set(deaths_seen))}"
    return Result(measured, passed=not problems, details=tuple(problems))


def _until_a_run_ends(root: Path) -> tuple[int, dict[str, object] | None]:
    """Run (and resume) the job until a run exits by itself; the deaths, and what it said."""
    deaths = 0
    for _ in range(DEATHS_ALLOWED + 2):
        done = subprocess.run(
            [sys.executable, "-c", RUN, str(root)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        if done.returncode == -signal.SIGKILL:
            deaths += 1
            continue
        lines = done.stdout.strip().splitlines()
        return deaths, json.loads(lines[-1]) if done.returncode == 0 and lines else None
    return deaths, None


def _check(deaths: int, outcome: dict[str, object] | None) -> list[str]:
    if outcome is None:
        return [f"no run ended by itself after {deaths} deaths"]
    problems = []
    if deaths != DEATHS_ALLOWED:
        problems.append(f"{deaths} deaths, not {DEATHS_ALLOWED}")
    items = outcome["items"]
    assert isinstance(items, dict)
    if items.get("bomb") != ["failed", "crash_loop"]:
        problems.append(f"bomb ended {items.get('bomb')}, not failed (crash_loop)")
    others = {key: value for key, value in items.items() if key != "bomb"}
    if any(status != "completed" for status, _ in others.values()):
        problems.append(f"the other items ended {others}")
    calls = outcome["calls"]
    assert isinstance(calls, list)
    if "bomb" in calls or len(calls) != len(set(calls)):
        problems.append(f"the last run called the provider for {calls}")
    return problems

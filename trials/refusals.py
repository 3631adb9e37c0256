"""The refusals trial: answers another attempt cannot mend, over loopback HTTP against the fake
server with the real clients: OpenAI's 400 `moderation_blocked`, 401 `invalid_api_key` and 429
`insufficient_quota`, and Gemini's 200 with no image (`blockReason`).

Each refused item must get one call and no retry, and say exactly why; a refused key or an empty
account must stop the provider for the rest of the run: no attempt starts once the first such
answer was read (the calls already under way then may still answer)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.records import ItemRecord

from . import _procs as procs
from . import _timeline as timeline
from .registry import Result, Rounds, trial

FORBIDDEN = "forbidden"


@dataclass(frozen=True)
class Case:
    name: str
    server: dict[str, Any]
    provider: str
    refused: str
    """What the reason of every refused item says (the API's own code)."""
    stops: bool = False
    """The answer stops the provider: items after it fail without a call."""


CASES = (
    Case("moderation", {"reject_pattern": FORBIDDEN}, "openai", "moderation_blocked"),
    Case("gemini-no-image", {"reject_pattern": FORBIDDEN}, "gemini", "PROHIBITED_CONTENT"),
    Case(
        "bad-key", {"require_key": "sk-the-right-key-0123456789"}, "openai", "invalid_api_key", True
    ),
    Case("no-credit", {"credit": 2}, "openai", "insufficient_quota", True),
)


@trial(
    "refusals",
    "400 moderation_blocked, 401, 429 insufficient_quota, Gemini 200 with no image: 0 retries; "
    "exact reasons per item; 401 and quota stop that provider at once",
)
def refusals(rounds: Rounds) -> Result:
    count = rounds.count(1, 5)
    failures: list[str] = []
    refused = retries = after_stop = 0
    for round_, case in ((r, case) for r in range(count) for case in CASES):
        with procs.fake_server(latency_s=0.2, seed=round_, **case.server) as thread:
            spec = _spec(rounds.folder, case)
            ran = timeline.run_job(thread, rounds.folder, f"{case.name}-{round_}", spec)
        if ran.job_id is None or ran.code not in (3, 4):
            failures.append(f"{case.name}: exit {ran.code}: {ran.err.strip()[-200:]!r}")
            continue
        items = procs.items(ran.ws, ran.job_id)
        failed = [item for item in items if item.status == "failed"]
        refused += len(failed)
        retries += sum(max(0, item.attempt_count - 1) for item in failed)
        failures += [f"{case.name}: {line}" for line in _reasons(case, items)]
        if case.stops:
            after_stop += _started_after_stop(items)
    measured = (
        f"{refused} items refused in {count * len(CASES)} runs: {retries} retries, "
        f"{after_stop} attempts started after a 401 or an empty account was read; "
        f"{len(failures)} reasons wrong"
    )
    passed = refused > 0 and retries == 0 and after_stop == 0 and not failures
    return Result(measured, passed, procs.tally(failures))


def _spec(folder: Path, case: Case) -> Path:
    prompts = [f"picture number {n}" for n in range(1, 9)]
    if not case.stops:
        prompts[2] = prompts[5] = f"a {FORBIDDEN} picture"
    items = [{"id": f"img-{n}", "prompt": prompt} for n, prompt in enumerate(prompts, 1)]
    limits = {"concurrency": 2, "timeout_s": 20, "max_attempts": 3}
    if case.provider == "openai":
        return procs.openai_spec(folder, case.name, items=items, limits=limits)
    head = {
        "key": case.name,
        "provider": "gemini",
        "model": "gemini-2.5-flash-image",
        "defaults": {"size": "1024x1024"},
        "limits": limits,
        "output": {"format": "png", "thumbnail_px": 32},
        "cache": False,
    }
    return procs.write_spec(folder, head, items=items)


def _reasons(case: Case, items: list[ItemRecord]) -> list[str]:
    """What is wrong with the items' ends: each refused item says the API's reason."""
    wrong = []
    for item in items:
        refusable = case.stops or FORBIDDEN in item.prompt
        if not refusable:
            if item.status != "completed":
                wrong.append(f"{item.id} ended {item.status}, not completed")
            continue
        if case.name == "no-credit" and item.status == "completed":
            continue  # paid for before the credit ran out
        error = item.error
        said = f"{error.kind}: {error.message}" if error else "no error"
        if item.status != "failed" or case.refused not in said:
            wrong.append(f"{item.id} ended {item.status} ({said[:120]})")
    return wrong


def _started_after_stop(items: list[ItemRecord]) -> int:
    """Attempts started after the run read its first 401 or insufficient_quota answer."""
    attempts = [attempt for item in items for attempt in item.attempts]
    stopped = [
        attempt.ended_at
        for attempt in attempts
        if attempt.error is not None and attempt.error.kind == "auth" and attempt.ended_at
    ]
    if not stopped:
        return len(attempts)  # never stopped: every attempt counts against it
    first = min(stopped)
    return sum(1 for attempt in attempts if attempt.started_at > first)

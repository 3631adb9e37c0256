"""Corrupt answers: whole jobs against a hostile API on loopback, through the real `openai`
SDK and through the Gemini provider, each item's answer a different poison (truncated base64,
bytes that are no image, a 400-megapixel PNG bomb, a 500 MB body, a body that never ends,
JSON nested 200,000 deep) beside one good image.

Each poisoned item must end `failed` with a `bad_response` reason that says what was wrong,
the good one completed, the process must end normally (exit 3, partial), and its peak memory
may exceed that of the same job made of good answers by less than 100 MB."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._cli import base_env, cli, cli_measured, in_parallel, write_spec
from ._hostile_api import KINDS, hostile_api
from .registry import Result, Rounds, trial

MB = 1024 * 1024
GROWTH_LIMIT = 100 * MB
REASONS = {
    "truncated": "base64",
    "notimage": "not an image",
    "bomb": "too large",
    "huge": "larger than",
    "endless": "larger than",
    "deep": "not valid json",
}
"""What each poison's recorded reason must say."""
PROVIDERS = {
    "openai": ("gpt-image-1", "OPENAI_BASE_URL", "/v1"),
    "gemini": ("gemini-2.5-flash-image", "GEMINI_BASE_URL", ""),
}
"""Each provider's model, and where its base URL goes (with what after the server's)."""
Items = dict[str, dict[str, Any]]


def _job(folder: Path, provider: str, url: str, kinds: list[str]) -> tuple[int | None, int, Items]:
    """Run one job whose items ask for `kinds`; its exit code, peak memory and items."""
    folder.mkdir()
    model, variable, tail = PROVIDERS[provider]
    items = [{"id": f"{kind}-{n}", "prompt": f"a {kind} picture"} for n, kind in enumerate(kinds)]
    limits = {"max_attempts": 1, "concurrency": 4, "timeout_s": 60}
    spec = {"key": provider, "provider": provider, "model": model, "items": items, "limits": limits}
    path = write_spec(folder, "spec.json", spec)
    env = base_env(OPENAI_API_KEY="sk-trial", GEMINI_API_KEY="trial", **{variable: url + tail})
    ended, peak = cli_measured(folder / "ws", "run", str(path), env=env, timeout=120)
    shown = cli(folder / "ws", "status", "--json", env=env)
    records = json.loads(shown.out)["items"] if shown.code == 0 else []
    return ended.code, peak, {item["id"]: item for item in records}


def _check(provider: str, code: int | None, items: Items, growth: int) -> list[str]:
    problems = []
    if code != 3:
        problems.append(f"{provider}: exit {code} (3, partial, expected)")
    for item_id, item in items.items():
        kind = item_id.rsplit("-", 1)[0]
        error = item.get("error") or {}
        if kind == "good":
            if item["status"] != "completed":
                problems.append(f"{provider} {item_id}: {item['status']} {error}")
            continue
        said = str(error.get("message", "")).lower()
        if (
            item["status"] != "failed"
            or error.get("kind") != "bad_response"
            or REASONS[kind] not in said
        ):
            problems.append(f"{provider} {item_id}: {item['status']} {error}")
    if growth >= GROWTH_LIMIT:
        problems.append(f"{provider}: peak memory {growth / MB:.0f} MB above the good job's")
    return problems


@trial(
    "corrupt answers",
    "truncated base64, non-image bytes, a 400-megapixel PNG bomb, a 500 MB body: each rejected "
    "with a clear reason, no crash, RSS growth < 100 MB",
)
def corrupt_answers(rounds: Rounds) -> Result:
    kinds = ["good", *KINDS]
    problems: list[str] = []
    worst = dict.fromkeys(PROVIDERS, 0)
    with hostile_api() as (url, _):
        for round_ in range(rounds.count(1, 3)):
            folder = rounds.folder / f"round-{round_}"
            folder.mkdir()
            problems += _round(folder, url, kinds, worst)
    growths = ", ".join(f"{p} {growth / MB:+.0f} MB" for p, growth in worst.items())
    return Result(
        f"{rounds.count(1, 3)} rounds x {len(PROVIDERS)} providers x {len(KINDS)} poisoned "
        f"answers: {'each' if not problems else 'not each'} failed as bad_response with its "
        f"reason, no crash; worst peak RSS over a good job: {growths}",
        passed=not problems,
        details=tuple(problems),
    )


def _round(folder: Path, url: str, kinds: list[str], worst: dict[str, int]) -> list[str]:
    """One job of good answers and one of poisoned ones per provider, two at a time."""
    runs = [(p, poisoned) for p in PROVIDERS for poisoned in (False, True)]

    def run(pair: tuple[str, bool]) -> tuple[int | None, int, Items]:
        provider, poisoned = pair
        asked = kinds if poisoned else ["good"] * len(kinds)
        return _job(folder / f"{provider}-{poisoned}", provider, url, asked)

    done = dict(zip(runs, in_parallel(runs, run, workers=2), strict=True))
    problems = []
    for provider in PROVIDERS:
        _, good_peak, _ = done[(provider, False)]
        code, peak, items = done[(provider, True)]
        worst[provider] = max(worst[provider], peak - good_peak)
        problems += _check(provider, code, items, peak - good_peak)
        if len(items) != len(kinds):
            problems.append(f"{provider}: {len(items)} items recorded of {len(kinds)}")
    return problems

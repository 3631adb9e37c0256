"""The TUI benchmark (issue 8): how fast the app answers a key press while a big job runs.

A 500-item job runs on the mock provider (real pictures drawn, post-processed in worker
processes: JPEG, thumbnail) inside the app, which shows it on its job screen, headless (the
whole screen is composed and rendered, the output thrown away). Every `--every-ms`, a key is
pressed: in turn `p` (preview: image / prompt), `down` (table cursor) and `f` (filter by status:
the table redrawn). The time from the press to the screen refreshed after the key's action ran
(`call_after_refresh`) is the key's latency; the 95th percentile is the figure (target: at most
100 ms). Only presses made while the job runs count.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.app import App

from orchestrator import JobSpec, Workspace, parse_spec
from tui import make_app
from tui.screens import JobScreen
from tui.widgets import ItemsTable

from . import report
from .report import Row

__all__ = ["add_arguments", "main"]

TARGET_P95_MS = 100.0
KEYS = ("p", "down", "f")
DEFAULT_TITLE = "TUI responsiveness"
ANSWER_TIMEOUT_S = 10.0
"""A key not answered by then counts as this long (it would be a hang)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--items", type=int, default=500, help="images in the job (500)")
    parser.add_argument("--latency", type=float, default=0.4, help="mock seconds per image")
    parser.add_argument("--concurrency", type=int, default=8, help="images in flight (8)")
    parser.add_argument("--size", default="512x512", help="image size drawn (512x512)")
    parser.add_argument("--every-ms", type=float, default=100.0, help="pause between presses")
    parser.add_argument(
        "--write", type=Path, metavar="PATH", help="append the table to this markdown file"
    )
    parser.add_argument("--title", default=DEFAULT_TITLE, help="heading of the appended section")


@dataclass
class Result:
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KEYS})
    job_s: float = 0.0
    status: str = ""

    @property
    def all_ms(self) -> list[float]:
        return [ms for values in self.latencies_ms.values() for ms in values]


def main(args: argparse.Namespace) -> int:
    run = report.describe_run()
    spec = _spec(args.items, args.latency, args.concurrency, args.size)
    with tempfile.TemporaryDirectory(prefix="imagebatch-tui-bench-") as folder:
        result = asyncio.run(_measure(Workspace(Path(folder) / "ws"), spec, args.every_ms / 1000))
    body = "\n\n".join([report.render_table(_rows(result, args.items)), _method(args, result)])
    print(f"{report.render_run(run)}\n\n{body}")
    if args.write is not None:
        report.append_section(args.write, args.title, run, body)
        print(f"\nappended to {args.write}", file=sys.stderr)
    return 0


def _spec(items: int, latency: float, concurrency: int, size: str) -> JobSpec:
    return parse_spec(
        {
            "key": "tui-bench",
            "provider": "mock",
            "provider_options": {"seed": 1, "latency_mean_s": latency},
            "defaults": {"size": size},
            "limits": {"concurrency": concurrency, "max_attempts": 1},
            "output": {"format": "jpeg", "thumbnail_px": 256},
            "items": [{"id": f"img-{n:04d}", "prompt": f"picture {n}"} for n in range(items)],
        },
        "benchmark",
    )


async def _measure(workspace: Workspace, spec: JobSpec, every_s: float) -> Result:
    app = make_app(workspace, env={}, pictures="halfcell")
    result = Result()
    async with app.run_test(size=(160, 48)) as pilot:
        assert app.session is not None
        handle = await app.session.orchestrator.submit(spec)
        started = time.perf_counter()
        screen = JobScreen(app.session, handle.id)
        await app.push_screen(screen)
        await pilot.pause(0.5)
        presses = 0
        while app.session.orchestrator.running_here(handle.id):
            key = KEYS[presses % len(KEYS)]
            latency = await _press(app, screen, key)
            if app.session.orchestrator.running_here(handle.id):
                result.latencies_ms[key].append(latency * 1000)
            presses += 1
            await asyncio.sleep(every_s)
        result.job_s = time.perf_counter() - started
        result.status = str((await handle.status()).status)
    return result


async def _press(app: App[Any], screen: JobScreen, key: str) -> float:
    """Press `key`; seconds until the screen was refreshed after its action ran."""
    painted: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def done() -> None:
        if not painted.done():
            painted.set_result(time.perf_counter())

    owner, action = _action_of(screen, key)
    restore = _after(owner, action, lambda: app.call_after_refresh(done))
    pressed_at = time.perf_counter()
    app.simulate_key(key)  # the key event, queued as the terminal driver queues it
    try:
        async with asyncio.timeout(ANSWER_TIMEOUT_S):
            return await painted - pressed_at
    except TimeoutError:
        return ANSWER_TIMEOUT_S
    finally:
        restore()


def _action_of(screen: JobScreen, key: str) -> tuple[object, str]:
    if key == "down":
        table = screen.query_one(ItemsTable)
        table.focus()
        return table, "action_cursor"
    return screen, {"p": "action_toggle_preview", "f": "action_filter"}[key]


def _after(owner: object, name: str, then: Callable[[], object]) -> Callable[[], None]:
    """Make `owner.name()` call `then()` once it has run; returns how to undo that."""
    original = getattr(owner, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        outcome = original(*args, **kwargs)
        then()
        return outcome

    setattr(owner, name, wrapped)
    return lambda: delattr(owner, name)


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def _rows(result: Result, items: int) -> list[Row]:
    every = result.all_ms
    p95 = _p95(every)
    rows = [
        Row(
            metric=f"key press to screen, 95th percentile, {items:,}-item job",
            value=f"{p95:.1f} ms",
            target=f"<= {TARGET_P95_MS:g} ms",
            passed=p95 <= TARGET_P95_MS,
        ),
        Row(metric="median, all keys", value=f"{statistics.median(every):.1f} ms"),
        Row(metric="slowest press", value=f"{max(every):.1f} ms"),
    ]
    for key, values in result.latencies_ms.items():
        if values:
            rows.append(Row(metric=f"95th percentile, `{key}`", value=f"{_p95(values):.1f} ms"))
    return rows


def _method(args: argparse.Namespace, result: Result) -> str:
    return (
        f"{len(result.all_ms)} presses ({', '.join(KEYS)} in turn, one every "
        f"{args.every_ms:g} ms plus its answer) while a {args.items}-item mock job "
        f"({args.size}, {args.latency:g} s mean latency, concurrency {args.concurrency}, JPEG "
        f"and 256 px thumbnail post-processed in worker processes) ran in the app: "
        f"{result.job_s:.1f} s, ended {result.status}. Headless Textual app at 160x48: the "
        "screen is composed and rendered, the output discarded. Latency = key sent to the "
        "screen refreshed after the key's action ran."
    )

"""The measured runs: a job of N items against a zero-latency mock, in a fresh workspace.

Each function runs one job to its end through the public API (`Orchestrator.create`, then
`Orchestrator.run`) in a temporary workspace, removed afterwards unless it is to be kept (see
`scratch_folder`), and returns what it measured. They are meant to run in a fresh process each
(see `core`), so that one run's caches and heap do not flatter or burden the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import JobSpec, JobStatus, Orchestrator, Workspace, parse_spec

from . import memory
from .cputime import tree_cpu_s

__all__ = [
    "OverheadResult",
    "StallResult",
    "large_spec",
    "measure_overhead",
    "measure_stall",
    "scratch_folder",
    "small_spec",
]

MONITOR_PERIOD_S = 0.005
"""How long the stall monitor sleeps; a wake-up later than this is the loop's stall."""
_MOCK_NOW = {"seed": 1, "latency_mean_s": 0, "latency_distribution": "fixed"}
_LIMITS = {"concurrency": 8, "max_attempts": 1}


@dataclass(frozen=True)
class OverheadResult:
    """One job of small images: how long it took and how much memory it needed."""

    items: int
    create_s: float
    """`await create(spec)`: validation and recording the job."""
    run_s: float
    """`await run(job_id)`: what the per-image overhead is computed from."""
    user_s: float
    """CPU time the process and its worker processes spent in their own code (all threads)
    during `run` (see `cputime`)."""
    system_s: float
    """CPU time the kernel spent for them during `run`: files made and synced, thread and
    process switches. What a file costs to make depends on the file system and its recent
    history."""
    rss_before_kb: int
    """Resident memory once the spec is built, before `create`."""
    rss_peak_kb: int
    """Peak resident memory from then to the end of `run`."""
    rss_after_kb: int
    """Resident memory after `run`, with the orchestrator closed."""
    peak_reset: bool
    """False if the peak could not be reset: then it may include the peak of the imports."""

    @property
    def ms_per_image(self) -> float:
        return 1000 * self.run_s / self.items

    @property
    def peak_growth_mb(self) -> float:
        return (self.rss_peak_kb - self.rss_before_kb) / 1024


@dataclass(frozen=True)
class StallResult:
    """How late a 5 ms sleep on the job's own loop woke up while the job ran."""

    items: int
    run_s: float
    samples: int
    max_ms: float
    p99_ms: float


def small_spec(items: int) -> JobSpec:
    """16x16 PNGs that the mock answers at once: the run is all orchestration."""
    return _spec(items, {"size": "16x16"}, {"format": "png", "thumbnail_px": 16})


def large_spec(items: int) -> JobSpec:
    """1024x1024 images, drawn at once, re-encoded as JPEG with a 256 px thumbnail."""
    output = {"format": "jpeg", "max_size": "1024x1024", "thumbnail_px": 256}
    return _spec(items, {"size": "1024x1024"}, output)


def _spec(items: int, defaults: dict[str, Any], output: dict[str, Any]) -> JobSpec:
    data = {
        "key": "bench",
        "provider": "mock",
        "provider_options": _MOCK_NOW,
        "defaults": defaults,
        "limits": _LIMITS,
        "output": output,
        "items": [{"id": f"item-{n:05d}", "prompt": f"benchmark image {n}"} for n in range(items)],
    }
    return parse_spec(data, "bench")


@contextlib.contextmanager
def scratch_folder(prefix: str, where: Path | None, *, keep: bool = False) -> Iterator[str]:
    """A new folder in `where` (the system's temporary folder by default), removed afterwards
    unless `keep`.

    `core` keeps each run's folder until every run is done, in one folder it removes at the
    end: on a file system that checks recently deleted inodes as it makes a file (ext4 without
    a journal, as on the machine of `RESULTS.md`), a run made just after the one before it was
    removed pays for the thousands of files removed, in the kernel, at every file it makes."""
    if keep:
        yield tempfile.mkdtemp(prefix=prefix, dir=where)
        return
    with tempfile.TemporaryDirectory(prefix=prefix, dir=where) as folder:
        yield folder


async def measure_overhead(
    items: int, where: Path | None = None, *, keep: bool = False
) -> OverheadResult:
    """Create and run a job of `items` small images in a new workspace in `where` (see
    `scratch_folder`); time both, follow the peak memory."""
    spec = small_spec(items)
    rss_before = memory.rss_kb()
    peak_reset = memory.reset_peak()
    with scratch_folder("imagebatch-bench-", where, keep=keep) as folder:
        async with Orchestrator(Workspace(Path(folder) / "workspace")) as orchestrator:
            started = time.perf_counter()
            job = await orchestrator.create(spec)
            created, cpu_before = time.perf_counter(), tree_cpu_s()
            await orchestrator.start(job.id)
            final = await job.wait()
            finished, cpu_after = time.perf_counter(), tree_cpu_s()
        rss_peak, rss_after = memory.peak_kb(), memory.rss_kb()
    _check_completed(final.status, final.id)
    return OverheadResult(
        items=items,
        create_s=created - started,
        run_s=finished - created,
        user_s=cpu_after[0] - cpu_before[0],
        system_s=cpu_after[1] - cpu_before[1],
        rss_before_kb=rss_before,
        rss_peak_kb=rss_peak,
        rss_after_kb=rss_after,
        peak_reset=peak_reset,
    )


async def measure_stall(
    items: int, where: Path | None = None, *, keep: bool = False
) -> StallResult:
    """Run a job of `items` 1024x1024 images while a monitor on the same loop measures stalls."""
    spec = large_spec(items)
    lateness: list[float] = []
    with scratch_folder("imagebatch-bench-", where, keep=keep) as folder:
        async with Orchestrator(Workspace(Path(folder) / "workspace")) as orchestrator:
            job = await orchestrator.create(spec)
            monitor = asyncio.create_task(_monitor(lateness))
            started = time.perf_counter()
            try:
                await orchestrator.start(job.id)
                final = await job.wait()
            finally:
                monitor.cancel()
                await asyncio.wait([monitor])
            run_s = time.perf_counter() - started
    _check_completed(final.status, final.id)
    return StallResult(
        items=items,
        run_s=run_s,
        samples=len(lateness),
        max_ms=1000 * max(lateness, default=0.0),
        p99_ms=1000 * _percentile(lateness, 0.99),
    )


async def _monitor(lateness: list[float]) -> None:
    """Sleep 5 ms again and again; record how much later than asked each wake-up came."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + MONITOR_PERIOD_S
        await asyncio.sleep(MONITOR_PERIOD_S)
        lateness.append(max(0.0, loop.time() - due))


def _percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value at or above `share` of the values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _check_completed(status: JobStatus, job_id: str) -> None:
    """A benchmark of a job that did not complete measures something else: refuse it."""
    if status != JobStatus.COMPLETED:
        raise RuntimeError(f"benchmark job {job_id} ended {status}, not completed")

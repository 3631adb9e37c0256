"""`imagebatch stats [JOB]`: the numbers of one job or of every job, and the stuck jobs.

The numbers come from `orchestrator.stats` (which says how each is counted); this module reads
the records through the job handles and prints them, as lines or as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ..records import JobRecord
from ..service import Orchestrator
from ..states import ItemStatus
from ..stats import JobStats, Stats, Stuck, job_stats, stuck, total
from ..wording import format_cost, format_duration, format_latency, reason
from .context import Context, opened

__all__ = ["cmd_stats"]


async def cmd_stats(ctx: Context, args: argparse.Namespace) -> int:
    found: list[tuple[JobStats, Stuck | None]] = []
    if args.job or ctx.workspace.journal_dir.is_dir():
        async with opened(ctx, must_exist=True) as orchestrator:
            jobs = [await orchestrator.handle(args.job).status()] if args.job else None
            found = await _read(orchestrator, jobs)
    if args.job:
        one, stuck_job = found[0]
        if args.json:
            document = {**_job_json(one), "stuck": _stuck_json(stuck_job)}
            ctx.say(json.dumps({**document, "stale_after_s": ctx.stale_after_s}, indent=2))
        else:
            ctx.say("\n".join(_job_lines(one, stuck_job)))
        return 0
    whole = total(part.stats for part, _ in found)
    stuck_jobs = [marked for _, marked in found if marked is not None]
    if args.json:
        document = {
            "total": whole.as_json(),
            "jobs": [_job_json(part) for part, _ in found],
            "stuck": [marked.as_json() for marked in stuck_jobs],
            "stale_after_s": ctx.stale_after_s,
        }
        ctx.say(json.dumps(document, indent=2))
    else:
        ctx.say("\n".join(_workspace_lines(found, whole, stuck_jobs)))
    return 0


async def _read(
    orchestrator: Orchestrator, jobs: list[JobRecord] | None
) -> list[tuple[JobStats, Stuck | None]]:
    """Each job's numbers and, if it is stuck, why; every job of the workspace by default."""
    journal = await orchestrator.ready()
    found = []
    for job in jobs if jobs is not None else await orchestrator.jobs():
        handle = orchestrator.handle(job.id)
        snapshot = await handle.snapshot()
        now = time.time()
        live = await handle.runner_live()
        holder = await journal.holder(snapshot.job.key)
        found.append(
            (
                # a run nobody carries on ended at its last recorded change, not now
                job_stats(
                    snapshot.job, snapshot.items, now=now if live else snapshot.job.updated_at
                ),
                stuck(snapshot.job, holder, live=live, now=now),
            )
        )
    return found


def _job_json(part: JobStats) -> dict[str, Any]:
    job = part.job
    head = {"id": job.id, "key": job.key, "status": str(job.status), "name": job.config.name}
    return {"job": head, "stats": part.stats.as_json()}


def _stuck_json(marked: Stuck | None) -> dict[str, Any] | None:
    return None if marked is None else marked.as_json()


def _job_lines(part: JobStats, marked: Stuck | None) -> list[str]:
    job = part.job
    lines = [f"job {job.id}  key {job.key}  {job.status}", *_stats_lines(part.stats)]
    if marked is not None:
        lines.append("stuck: " + _stuck_text(marked))
    return lines


def _workspace_lines(
    found: list[tuple[JobStats, Stuck | None]], whole: Stats, stuck_jobs: list[Stuck]
) -> list[str]:
    if not found:
        return ["no jobs yet"]
    lines = [f"{whole.jobs} job{'s' if whole.jobs != 1 else ''}", *_stats_lines(whole), ""]
    lines.append(
        f"{'job':<32} {'status':<9} {'done':>9} {'success':>7} {'att':>4} {'retry':>5} "
        f"{'p50':>7} {'img/min':>7} {'cost':>8}"
    )
    for part, _ in found:
        job, stats = part.job, part.stats
        p50 = format_latency(stats.latency[0].p50_s if stats.latency else None)
        lines.append(
            f"{job.id:<32} {job.status:<9} "
            f"{f'{stats.count(ItemStatus.COMPLETED)}/{stats.items}':>9} "
            f"{_rate(stats.success_rate):>7} {stats.attempts:>4} {stats.retries:>5} {p50:>7} "
            f"{_pace(stats.images_per_minute):>7} {format_cost(stats.cost_usd, stats.unpriced):>8}"
        )
    lines.append("")
    if stuck_jobs:
        lines.append(f"stuck ({len(stuck_jobs)}):")
        lines += [f"  {_stuck_text(marked)}" for marked in stuck_jobs]
    else:
        lines.append("stuck: none")
    return lines


def _stats_lines(stats: Stats) -> list[str]:
    counts = ", ".join(f"{stats.count(s)} {s}" for s in ItemStatus if stats.count(s))
    lines = [
        f"items {stats.items} ({counts or 'none'})",
        f"success rate {_rate(stats.success_rate)}",
        f"attempts {stats.attempts}, retries {stats.retries}",
        "failures: " + _kinds(stats.failures),
        "attempt errors: " + _kinds(stats.attempt_errors),
    ]
    if stats.latency:
        lines.append("latency (p50 / p95 / max):")
    for row in stats.latency:
        lines.append(
            f"  {row.provider} / {row.model}: {format_latency(row.p50_s)} / "
            f"{format_latency(row.p95_s)} / {format_latency(row.max_s)} "
            f"({row.count} answer{'s' if row.count != 1 else ''})"
        )
    lines += [
        f"images per minute {_pace(stats.images_per_minute)} ({format_duration(stats.run_s)} run)",
        f"cost {format_cost(stats.cost_usd, stats.unpriced)}, cached {stats.cached}",
    ]
    return lines


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason(kind)} ({n})" for kind, n in counts.items()) or "none"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _pace(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _stuck_text(marked: Stuck) -> str:
    if marked.heartbeat_age_s is None:
        beat = "no process holds its key's lock"
    else:
        beat = (
            f"last heartbeat {format_duration(marked.heartbeat_age_s)} ago "
            f"(pid {marked.pid} on {marked.host})"
        )
    return f"job {marked.job_id} (key {marked.key}): {beat}; `imagebatch resume {marked.job_id}`"

"""The commands that look at jobs or ask something of them: status, list, cancel, clear-lock,
webhooks."""

from __future__ import annotations

import argparse
import json

from ..errors import NotFoundError
from ..records import JobRecord
from ..states import ItemStatus, JobStatus
from .context import Context, opened, status_json
from .report import (
    job_json,
    jobs_table,
    status_text,
    undelivered_json,
    undelivered_text,
    webhook_json,
)

__all__ = ["cmd_cancel", "cmd_clear_lock", "cmd_list", "cmd_status", "cmd_webhooks"]


async def cmd_cancel(ctx: Context, args: argparse.Namespace) -> int:
    async with opened(ctx, must_exist=True) as orchestrator:
        handle = orchestrator.handle(args.job)
        if args.items:
            named = [part.strip() for part in args.items.split(",") if part.strip()]
            asked = await handle.cancel_items(named)
            noun = "item" if len(asked) == 1 else "items"
            ctx.note(f"job {handle.id}: cancelling {len(asked)} {noun}: {', '.join(asked)}")
            job = await handle.status()
        else:
            job = await handle.cancel()
        items = await handle.items()
    if args.json:
        document = status_json(job, items, ctx.workspace)
        document["job"]["cancel_requested"] = job.cancel_requested
        ctx.say(json.dumps(document, indent=2))
    elif job.cancel_requested:
        ctx.say(f"job {job.id}: cancel requested; the running process stops its images now")
    else:
        ctx.say(f"job {job.id}: {job.status} ({job.count(ItemStatus.CANCELLED)} cancelled)")
    return 0


async def cmd_stop(ctx: Context, args: argparse.Namespace) -> int:
    """Ask the process running a job, here or anywhere, to wind its run down (as a first
    Ctrl-C there does): no new request starts, the ones under way are kept."""
    async with opened(ctx, must_exist=True) as orchestrator:
        handle = orchestrator.handle(args.job)
        asked = await handle.stop()
        job = await handle.status()
    if asked:
        ctx.say(
            f"job {job.id}: stop requested; its process starts no new request and stops once "
            f"the ones under way are kept; `imagebatch resume {job.id}` continues it"
        )
    else:
        ctx.say(f"job {job.id}: {job.status}, and no process is running it: nothing to stop")
    return 0


async def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    async with opened(ctx, must_exist=True) as orchestrator:
        if args.job:
            handle = orchestrator.handle(args.job)
        else:
            jobs = await orchestrator.jobs()
            if not jobs:
                raise NotFoundError("no jobs yet; `imagebatch demo` makes one")
            handle = orchestrator.handle(jobs[-1].id)
        snapshot = await handle.snapshot()
        live = await handle.runner_live()
        kept = await handle.undelivered_webhooks() if snapshot.job.config.webhook else []
    job, items = snapshot.job, snapshot.items
    if args.json:
        document = status_json(job, items, ctx.workspace)
        document["job"]["runner_alive"] = live
        if job.config.webhook is not None:
            document["job"]["webhook"] = webhook_json(job.config.webhook, len(kept))
        ctx.say(json.dumps(document, indent=2))
    else:
        ctx.say(status_text(job, items, ctx.workspace, live=live, undelivered=len(kept)))
    return 0


async def cmd_list(ctx: Context, args: argparse.Namespace) -> int:
    jobs: list[JobRecord] = []
    dead: set[str] = set()
    if ctx.workspace.journal_dir.is_dir():
        async with opened(ctx) as orchestrator:
            jobs = await orchestrator.jobs()
            for job in jobs:  # said to be running: does some process still run it?
                if _runs(job) and not await orchestrator.handle(job.id).runner_live():
                    dead.add(job.id)
    if args.json:
        listed = [
            {**job_json(job, ctx.workspace), "runner_alive": _runs(job) and job.id not in dead}
            for job in jobs
        ]
        ctx.say(json.dumps(listed, indent=2))
    else:
        ctx.say(jobs_table(jobs, stopped=dead))
    return 0


def _runs(job: JobRecord) -> bool:
    """The journal says a process runs the job."""
    return job.status == JobStatus.RUNNING


async def cmd_clear_lock(ctx: Context, args: argparse.Namespace) -> int:
    async with opened(ctx, must_exist=True) as orchestrator:
        owner = await orchestrator.clear_lock(args.key)
    if owner is None:
        ctx.say(f"no lock for key {args.key!r}")
    else:
        ctx.say(
            f"cleared the lock of key {args.key!r} (job {owner.job_id}, pid {owner.pid}); "
            "that process writes nothing more and stops"
        )
    return 0


async def cmd_webhooks(ctx: Context, args: argparse.Namespace) -> int:
    """The job's webhook messages that were not delivered."""
    async with opened(ctx, must_exist=True) as orchestrator:
        handle = orchestrator.handle(args.job)
        job = await handle.status()
        undelivered = await handle.undelivered_webhooks()
    if args.json:
        ctx.say(json.dumps(undelivered_json(job, undelivered), indent=2))
    else:
        ctx.say(undelivered_text(job, undelivered))
    return 0

"""The commands that run or follow jobs: run, demo, create, start, resume, retry, watch.

Each holds its job through a `JobHandle` and follows it with the live display (`live.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from ..demo import demo_spec
from ..errors import NotFoundError
from ..estimate import Estimate, estimate_spec
from ..handle import JobHandle
from ..records import JobRecord
from ..service import Orchestrator
from ..states import JOB_TERMINAL
from .context import Context, opened, print_result, spec_from_args, status_json, with_overrides
from .detach import detach
from .live import follow_to_end
from .report import exit_code, job_json

__all__ = [
    "cmd_create",
    "cmd_demo",
    "cmd_estimate",
    "cmd_resume",
    "cmd_retry",
    "cmd_run",
    "cmd_start",
    "cmd_watch",
]


async def _report_end(
    ctx: Context,
    handle: JobHandle,
    as_json: bool,
    *,
    ran_here: bool = True,
    estimate: Estimate | None = None,
) -> int:
    """Follow the job to its end, print how it ended, return the exit code. `ran_here`: this
    process ran it, so the time followed is this run's time."""
    _, run_s = await follow_to_end(ctx, handle)
    snapshot = await handle.snapshot()
    job = snapshot.job
    extra: dict[str, Any] = {"estimate": estimate.to_json()} if estimate is not None else {}
    shown = run_s if ran_here else None
    # still marked active, with no live runner: it died; a run that stopped in order is not
    if (
        not ran_here
        and job.active
        and job.status not in JOB_TERMINAL
        and not await handle.runner_live()
    ):
        ctx.note(f"job {job.id}: the process running it is gone (killed or crashed)")
        extra["runner_alive"] = False
    print_result(ctx, job, snapshot.items, as_json, run_s=shown, extra=extra or None)
    return exit_code(job)


async def cmd_run(ctx: Context, args: argparse.Namespace) -> int:
    spec = spec_from_args(ctx, args)
    estimate = await asyncio.to_thread(estimate_spec, spec)
    async with opened(ctx) as orchestrator:
        if args.detach:
            handle = await orchestrator.create(spec)
            ctx.accepted()
            ctx.note(estimate.without(await orchestrator.in_cache(handle.id)).line())
            return await detach(ctx, handle, args)

        async def announce(handle: JobHandle) -> None:
            """Before the job runs: what it is and what it should cost."""
            nonlocal estimate
            ctx.accepted()
            ctx.note(f"job {handle.id}: {len(spec.items)} images with {spec.provider}")
            estimate = estimate.without(await orchestrator.in_cache(handle.id))
            ctx.note(estimate.line())

        handle = await orchestrator.submit(spec, before_start=announce)
        return await _report_end(ctx, handle, args.json, estimate=estimate)


async def cmd_estimate(ctx: Context, args: argparse.Namespace) -> int:
    """What a spec would cost, from the price table; opens no workspace, writes nothing."""
    spec = spec_from_args(ctx, args)
    estimate = await asyncio.to_thread(estimate_spec, spec)
    ctx.accepted()
    if args.json:
        ctx.say(json.dumps(estimate.to_json(), indent=2))
        return 0
    width = max(len(item.id) for item in estimate.items)
    for item in estimate.items:
        ctx.say(f"{item.id:<{width}}  {item.price}")
    ctx.say(estimate.line())
    return 0


async def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    spec = with_overrides(ctx, demo_spec(args.count, provider=args.provider or "mock"), args)
    async with opened(ctx) as orchestrator:
        handle = await orchestrator.submit(spec)
        ctx.accepted()
        if spec.provider == "mock":
            where = (
                "the offline mock provider (with some injected rate limits and server errors "
                "to show retries)"
            )
        else:
            model = spec.config.model or "its default model"
            where = f"{spec.provider} ({model}); this costs money"
        ctx.note(f"demo job {handle.id}: {len(spec.items)} images from {where}")
        return await _report_end(ctx, handle, args.json)


async def cmd_create(ctx: Context, args: argparse.Namespace) -> int:
    spec = spec_from_args(ctx, args)
    estimate = await asyncio.to_thread(estimate_spec, spec)
    async with opened(ctx) as orchestrator:
        handle = await orchestrator.create(spec)
        ctx.accepted()
        job = await handle.status()
    if args.json:
        document = {**job_json(job, ctx.workspace), "estimate": estimate.to_json()}
        ctx.say(json.dumps(document, indent=2))
    else:
        ctx.note(estimate.line())
        ctx.say(job.id)
    return 0


async def cmd_start(ctx: Context, args: argparse.Namespace) -> int:
    async with opened(ctx, must_exist=True) as orchestrator:
        if args.detach:
            return await detach(ctx, orchestrator.handle(args.job), args)
        handle = await orchestrator.start(args.job)
        return await _report_end(ctx, handle, args.json)


async def cmd_resume(ctx: Context, args: argparse.Namespace) -> int:
    async with opened(ctx, must_exist=True) as orchestrator:
        if args.job:
            return await _report_end(ctx, await orchestrator.start(args.job), args.json)
        return await _resume_all(ctx, orchestrator, args.json)


async def _resume_all(ctx: Context, orchestrator: Orchestrator, as_json: bool) -> int:
    """Resume every interrupted job no live process is running; `--json` prints one list.

    Jobs that were only created (never started) are left alone: `start` runs those.
    """
    waiting = [
        job
        for job in await orchestrator.unfinished()
        if not await orchestrator.handle(job.id).runner_live()
    ]
    for job in waiting:
        if job.started_at is None:
            ctx.note(f"job {job.id} was created but never started: `imagebatch start {job.id}`")
    jobs = [job for job in waiting if job.started_at is not None]
    if not jobs:
        message = "nothing to resume: every started job has finished or is running elsewhere"
        (ctx.note if as_json else ctx.say)(message)
    for job in jobs:
        await orchestrator.preflight(job)
    documents, codes = [], []
    for job in jobs:
        handle = await orchestrator.start(job.id)
        _, run_s = await follow_to_end(ctx, handle)
        snapshot = await handle.snapshot()
        codes.append(exit_code(snapshot.job))
        if as_json:
            documents.append(status_json(snapshot.job, snapshot.items, ctx.workspace))
        else:
            print_result(ctx, snapshot.job, snapshot.items, False, run_s=run_s)
    if as_json:
        ctx.say(json.dumps(documents, indent=2))
    return max(codes, default=0)


async def cmd_retry(ctx: Context, args: argparse.Namespace) -> int:
    """Retry failed and cancelled items: here, or by the process already running the job."""
    named = (part.strip() for part in (args.items or "").split(","))
    items = list(dict.fromkeys(part for part in named if part)) or None
    async with opened(ctx, must_exist=True) as orchestrator:
        handle = orchestrator.handle(args.job)
        job = await handle.status()
        with_dependents = args.with_dependents or await _dependents_too(ctx, handle, items)
        # checked first: a missing key resets nothing
        retried = await handle.retry_and_run(items, with_dependents=with_dependents)
        if not retried.ids:
            return await _nothing_to_retry(ctx, handle, job, args.json)
        noun = "item" if len(retried.ids) == 1 else "items"
        ctx.note(f"job {job.id}: retrying {len(retried.ids)} {noun}: {', '.join(retried.ids)}")
        if not retried.here:
            ctx.say(
                f"job {job.id}: the process running it starts them now; "
                f"`imagebatch watch {job.id}` follows it"
            )
            return 0
        return await _report_end(ctx, handle, args.json)


async def _dependents_too(ctx: Context, handle: JobHandle, items: list[str] | None) -> bool:
    """Whether the failed items that reference the named ones go too: asked on a terminal,
    else said (`--with-dependents` takes them)."""
    if not items:
        return False  # every failed item goes anyway
    waiting = await handle.dependents(items)
    if not waiting:
        return False
    noun = "item references" if len(waiting) == 1 else "items reference"
    said = f"{len(waiting)} failed or cancelled {noun} {', '.join(items)}: {', '.join(waiting)}"
    if ctx.interactive():
        return await ctx.ask(f"{said}; retry them too? [Y/n]", default=True)
    ctx.note(f"job {handle.id}: {said}; `--with-dependents` retries them too")
    return False


async def _nothing_to_retry(ctx: Context, handle: JobHandle, job: JobRecord, as_json: bool) -> int:
    message = f"job {job.id}: nothing to retry (no failed or cancelled items)"
    if as_json:
        ctx.note(message)
        snapshot = await handle.snapshot()
        print_result(ctx, snapshot.job, snapshot.items, True)
    else:
        ctx.say(message)
    return exit_code(job) if job.status in JOB_TERMINAL else 0


async def cmd_watch(ctx: Context, args: argparse.Namespace) -> int:
    """Follow a job (default: the newest unfinished one) until it ends; exit with its code."""
    async with opened(ctx, must_exist=True) as orchestrator:
        job = await _job_to_watch(orchestrator, args.job)
        handle = orchestrator.handle(job.id)
        if job.status not in JOB_TERMINAL and not await handle.runner_live():
            verb = "resume" if job.started_at else "start"
            ctx.note(f"job {job.id}: no process is running it; `imagebatch {verb} {job.id}`")
        return await _report_end(ctx, handle, args.json, ran_here=False)


async def _job_to_watch(orchestrator: Orchestrator, job_id: str | None) -> JobRecord:
    if job_id:
        return await orchestrator.handle(job_id).status()
    jobs = await orchestrator.jobs()
    if not jobs:
        raise NotFoundError("no jobs yet; `imagebatch demo` makes one")
    unfinished = [job for job in jobs if job.status not in JOB_TERMINAL]
    return (unfinished or jobs)[-1]

"""What each `imagebatch` subcommand does. Parsing lives in `cli`; printing shapes in `report`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .demo import demo_spec
from .errors import NotFoundError
from .progress import ProgressBar, follow
from .records import JobRecord
from .report import exit_code, item_json, job_json, job_summary, jobs_table, status_text
from .service import Orchestrator
from .spec import JobSpec, apply_overrides, load_spec
from .states import ItemStatus
from .storage import Workspace

__all__ = ["COMMANDS", "Context"]


@dataclass
class Context:
    """What every command gets: where the workspace is, the environment, where to print."""

    workspace: Workspace
    env: Mapping[str, str]
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    progress: bool | None = None
    """Draw a live bar: None means only when stderr is a terminal."""
    current_job: str | None = None
    """The job being run, so an interrupt can say how to resume it."""

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(text, file=self.err, flush=True)


@contextmanager
def _orchestrator(ctx: Context, *, must_exist: bool = False) -> Iterator[Orchestrator]:
    if must_exist and not ctx.workspace.journal_dir.is_dir():
        raise NotFoundError(
            f"no workspace at {ctx.workspace.root}; run a job first, or pass --workspace DIR"
        )
    orchestrator = Orchestrator(ctx.workspace, env=ctx.env)
    try:
        yield orchestrator
    finally:
        orchestrator.close()


def _spec_from_args(args: argparse.Namespace) -> JobSpec:
    spec = load_spec(Path(args.spec))
    return _with_overrides(spec, args)


def _with_overrides(spec: JobSpec, args: argparse.Namespace) -> JobSpec:
    return apply_overrides(
        spec,
        provider=args.provider,
        model=args.model,
        concurrency=args.concurrency,
        rate_per_minute=args.rate,
        timeout_s=args.timeout,
        max_attempts=args.max_attempts,
        key=args.key,
        name=args.name,
    )


async def _run_with_progress(ctx: Context, orchestrator: Orchestrator, job_id: str) -> JobRecord:
    """Run the job with a progress bar on stderr; return its final record."""
    job = orchestrator.journal.job(job_id)
    ctx.current_job = job.id
    live = ctx.err.isatty() if ctx.progress is None else ctx.progress
    done = job.count(ItemStatus.COMPLETED)
    bar = ProgressBar(job.id, job.total, done, ctx.err, live=live)
    with orchestrator.bus.subscribe() as subscription:
        follower = asyncio.create_task(follow(subscription, bar))
        try:
            job = await orchestrator.run(job.id)
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
            bar.close()
    return job


async def _run_and_report(
    ctx: Context, orchestrator: Orchestrator, job_id: str, as_json: bool
) -> int:
    job = await _run_with_progress(ctx, orchestrator, job_id)
    _print_result(ctx, orchestrator, job, as_json)
    return exit_code(job)


def _print_result(ctx: Context, orchestrator: Orchestrator, job: JobRecord, as_json: bool) -> None:
    items = orchestrator.journal.items(job.id)
    if as_json:
        ctx.say(json.dumps(_status_json(job, items, ctx.workspace), indent=2))
    else:
        ctx.say(job_summary(job, items, ctx.workspace))


def _status_json(job: JobRecord, items: list[Any], workspace: Workspace) -> dict[str, Any]:
    return {
        "job": job_json(job, workspace),
        "items": [item_json(item, workspace) for item in items],
    }


async def cmd_run(ctx: Context, args: argparse.Namespace) -> int:
    spec = _spec_from_args(args)
    with _orchestrator(ctx) as orchestrator:
        job = await orchestrator.create(spec)
        ctx.note(f"job {job.id}: {job.total} images with {spec.provider}")
        return await _run_and_report(ctx, orchestrator, job.id, args.json)


async def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    spec = _with_overrides(demo_spec(args.count), args)
    with _orchestrator(ctx) as orchestrator:
        job = await orchestrator.create(spec)
        ctx.note(
            f"demo job {job.id}: {job.total} images from the offline mock provider "
            "(with some injected rate limits and server errors to show retries)"
        )
        return await _run_and_report(ctx, orchestrator, job.id, args.json)


async def cmd_create(ctx: Context, args: argparse.Namespace) -> int:
    spec = _spec_from_args(args)
    with _orchestrator(ctx) as orchestrator:
        job = await orchestrator.create(spec)
    ctx.say(json.dumps(job_json(job, ctx.workspace), indent=2) if args.json else job.id)
    return 0


async def cmd_start(ctx: Context, args: argparse.Namespace) -> int:
    with _orchestrator(ctx, must_exist=True) as orchestrator:
        return await _run_and_report(ctx, orchestrator, args.job, args.json)


async def cmd_resume(ctx: Context, args: argparse.Namespace) -> int:
    with _orchestrator(ctx, must_exist=True) as orchestrator:
        if args.job:
            return await _run_and_report(ctx, orchestrator, args.job, args.json)
        return await _resume_all(ctx, orchestrator, args.json)


async def _resume_all(ctx: Context, orchestrator: Orchestrator, as_json: bool) -> int:
    """Resume every unfinished job no live process is running; `--json` prints one list."""
    jobs = [job for job in orchestrator.unfinished() if not orchestrator.is_running(job)]
    if not jobs:
        message = "nothing to resume: every job has finished or is running elsewhere"
        (ctx.note if as_json else ctx.say)(message)
    finished = [await _run_with_progress(ctx, orchestrator, job.id) for job in jobs]
    if as_json:
        documents = [
            _status_json(job, orchestrator.journal.items(job.id), ctx.workspace) for job in finished
        ]
        ctx.say(json.dumps(documents, indent=2))
    else:
        for job in finished:
            _print_result(ctx, orchestrator, job, as_json=False)
    return max((exit_code(job) for job in finished), default=0)


async def cmd_retry(ctx: Context, args: argparse.Namespace) -> int:
    named = (part.strip() for part in (args.items or "").split(","))
    items = list(dict.fromkeys(part for part in named if part)) or None
    with _orchestrator(ctx, must_exist=True) as orchestrator:
        reset = orchestrator.retry(args.job, items)
        if not reset:
            job = orchestrator.journal.job(args.job)
            message = f"job {job.id}: nothing to retry (no failed or cancelled items)"
            if args.json:
                ctx.note(message)
                _print_result(ctx, orchestrator, job, as_json=True)
            else:
                ctx.say(message)
            return exit_code(job)
        ctx.note(f"job {args.job}: retrying {len(reset)} items: {', '.join(reset)}")
        return await _run_and_report(ctx, orchestrator, args.job, args.json)


async def cmd_cancel(ctx: Context, args: argparse.Namespace) -> int:
    with _orchestrator(ctx, must_exist=True) as orchestrator:
        job = orchestrator.cancel(args.job)
        items = orchestrator.journal.items(job.id)
    if args.json:
        document = _status_json(job, items, ctx.workspace)
        document["job"]["cancel_requested"] = job.cancel_requested
        ctx.say(json.dumps(document, indent=2))
    elif job.cancel_requested:
        ctx.say(f"job {job.id}: cancel requested; the running process stops its images now")
    else:
        ctx.say(f"job {job.id}: {job.status} ({job.count(ItemStatus.CANCELLED)} cancelled)")
    return 0


async def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    with _orchestrator(ctx, must_exist=True) as orchestrator:
        journal = orchestrator.journal
        if args.job:
            job = journal.job(args.job)
        else:
            jobs = journal.jobs()
            if not jobs:
                raise NotFoundError("no jobs yet; `imagebatch demo` makes one")
            job = jobs[-1]
        items = journal.items(job.id)
        live = orchestrator.is_running(job)
    if args.json:
        document = _status_json(job, items, ctx.workspace)
        document["job"]["runner_alive"] = live
        ctx.say(json.dumps(document, indent=2))
    else:
        ctx.say(status_text(job, items, ctx.workspace, live=live))
    return 0


async def cmd_list(ctx: Context, args: argparse.Namespace) -> int:
    jobs: list[JobRecord] = []
    if ctx.workspace.journal_dir.is_dir():
        with _orchestrator(ctx) as orchestrator:
            jobs = orchestrator.journal.jobs()
    if args.json:
        ctx.say(json.dumps([job_json(job, ctx.workspace) for job in jobs], indent=2))
    else:
        ctx.say(jobs_table(jobs))
    return 0


async def cmd_clear_lock(ctx: Context, args: argparse.Namespace) -> int:
    with _orchestrator(ctx, must_exist=True) as orchestrator:
        owner = orchestrator.locks.clear(args.key)
    if owner is None:
        ctx.say(f"no lock for key {args.key!r}")
    else:
        ctx.say(f"cleared the lock of key {args.key!r} (job {owner.job_id}, pid {owner.pid})")
    return 0


COMMANDS = {
    "run": cmd_run,
    "demo": cmd_demo,
    "create": cmd_create,
    "start": cmd_start,
    "resume": cmd_resume,
    "retry": cmd_retry,
    "cancel": cmd_cancel,
    "status": cmd_status,
    "list": cmd_list,
    "clear-lock": cmd_clear_lock,
}

"""What each `imagebatch` subcommand does. Parsing lives in `cli`; printing shapes in `report`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

from .demo import demo_spec
from .display import JobDisplay, follow
from .errors import NotFoundError
from .records import JobRecord
from .report import (
    exit_code,
    item_json,
    job_json,
    job_summary,
    jobs_table,
    status_text,
    summary_table,
)
from .service import Orchestrator
from .spec import JobSpec, apply_overrides
from .specfile import load_spec
from .states import ItemStatus
from .storage import Workspace
from .tally import Tally

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
    terminated: bool = False
    """SIGTERM (not Ctrl-C) stopped the command."""
    notes: list[str] = field(default_factory=list)
    """Remarks on the input, printed once it is accepted (bad input stays one line)."""

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def accepted(self) -> None:
        """The input was accepted: print the remarks kept for this moment."""
        for text in self.notes:
            self.note(text)
        self.notes.clear()


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


def _spec_from_args(ctx: Context, args: argparse.Namespace) -> JobSpec:
    stdin = sys.stdin.buffer if args.spec == "-" else None
    spec = load_spec(Path(args.spec), fmt=args.format, stdin=stdin)
    return _with_overrides(ctx, spec, args)


def _with_overrides(ctx: Context, spec: JobSpec, args: argparse.Namespace) -> JobSpec:
    """The spec with the command line's flags over it.

    `--provider` naming another provider than the spec's drops what the spec wrote for its own
    provider (its `provider_options`, and its `model` unless `--model` is given), and says so.
    """
    model = args.model
    if args.provider and args.provider != spec.provider:
        dropped = [name for name in ("provider_options", "model") if getattr(spec, name)]
        if args.model:
            dropped = [name for name in dropped if name != "model"]
        if dropped:
            ctx.notes.append(
                f"note: the spec's {' and '.join(dropped)} (written for {spec.provider}) "
                f"are not used with --provider {args.provider}"
            )
        spec = spec.model_copy(update={"provider_options": {}, "model": None})
    return apply_overrides(
        spec,
        provider=args.provider,
        model=model,
        concurrency=args.concurrency,
        rate_per_minute=args.rate,
        timeout_s=args.timeout,
        max_attempts=args.max_attempts,
        key=args.key,
        name=args.name,
        allow_unknown_model=args.allow_unknown_model,
    )


async def _run_with_progress(
    ctx: Context, orchestrator: Orchestrator, job_id: str
) -> tuple[JobRecord, float]:
    """Run the job with a live display on stderr; return its final record and this run's time."""
    job = orchestrator.journal.job(job_id)
    ctx.current_job = job.id
    live = ctx.err.isatty() if ctx.progress is None else ctx.progress
    tally = Tally.from_snapshot(job, orchestrator.journal.items(job.id), now=time.time())
    started = time.monotonic()
    with orchestrator.bus.subscribe() as events, JobDisplay(tally, ctx.err, live=live) as display:
        follower = asyncio.create_task(follow(events, display))
        try:
            job = await orchestrator.run(job.id)
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
    return job, time.monotonic() - started


async def _run_and_report(
    ctx: Context, orchestrator: Orchestrator, job_id: str, as_json: bool
) -> int:
    job, run_s = await _run_with_progress(ctx, orchestrator, job_id)
    _print_result(ctx, orchestrator, job, as_json, run_s=run_s)
    return exit_code(job)


def _print_result(
    ctx: Context,
    orchestrator: Orchestrator,
    job: JobRecord,
    as_json: bool,
    *,
    run_s: float | None = None,
) -> None:
    items = orchestrator.journal.items(job.id)
    if as_json:
        ctx.say(json.dumps(_status_json(job, items, ctx.workspace), indent=2))
    elif ctx.out.isatty():
        Console(file=ctx.out).print(summary_table(job, items, ctx.workspace, run_s=run_s))
    else:
        ctx.say(job_summary(job, items, ctx.workspace, run_s=run_s))


def _status_json(job: JobRecord, items: list[Any], workspace: Workspace) -> dict[str, Any]:
    return {
        "job": job_json(job, workspace),
        "items": [item_json(item, workspace) for item in items],
    }


async def cmd_run(ctx: Context, args: argparse.Namespace) -> int:
    spec = _spec_from_args(ctx, args)
    with _orchestrator(ctx) as orchestrator:
        job = await orchestrator.create(spec)
        ctx.accepted()
        ctx.note(f"job {job.id}: {job.total} images with {spec.provider}")
        return await _run_and_report(ctx, orchestrator, job.id, args.json)


async def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    spec = _with_overrides(ctx, demo_spec(args.count, provider=args.provider or "mock"), args)
    with _orchestrator(ctx) as orchestrator:
        job = await orchestrator.create(spec)
        ctx.accepted()
        if spec.provider == "mock":
            where = (
                "the offline mock provider (with some injected rate limits and server errors "
                "to show retries)"
            )
        else:
            where = (
                f"{spec.provider} ({spec.config.model or 'its default model'}); this costs money"
            )
        ctx.note(f"demo job {job.id}: {job.total} images from {where}")
        return await _run_and_report(ctx, orchestrator, job.id, args.json)


async def cmd_create(ctx: Context, args: argparse.Namespace) -> int:
    spec = _spec_from_args(ctx, args)
    with _orchestrator(ctx) as orchestrator:
        job = await orchestrator.create(spec)
        ctx.accepted()
    ctx.say(json.dumps(job_json(job, ctx.workspace), indent=2) if args.json else job.id)
    return 0


async def cmd_start(ctx: Context, args: argparse.Namespace) -> int:
    with _orchestrator(ctx, must_exist=True) as orchestrator:
        await orchestrator.preflight(args.job)
        return await _run_and_report(ctx, orchestrator, args.job, args.json)


async def cmd_resume(ctx: Context, args: argparse.Namespace) -> int:
    with _orchestrator(ctx, must_exist=True) as orchestrator:
        if args.job:
            await orchestrator.preflight(args.job)
            return await _run_and_report(ctx, orchestrator, args.job, args.json)
        return await _resume_all(ctx, orchestrator, args.json)


async def _resume_all(ctx: Context, orchestrator: Orchestrator, as_json: bool) -> int:
    """Resume every interrupted job no live process is running; `--json` prints one list.

    Jobs that were only created (never started) are left alone: `start` runs those.
    """
    waiting = [job for job in orchestrator.unfinished() if not orchestrator.is_running(job)]
    jobs = [job for job in waiting if job.started_at is not None]
    for job in waiting:
        if job.started_at is None:
            ctx.note(f"job {job.id} was created but never started: `imagebatch start {job.id}`")
    if not jobs:
        message = "nothing to resume: every started job has finished or is running elsewhere"
        (ctx.note if as_json else ctx.say)(message)
    for job in jobs:
        await orchestrator.preflight(job.id)
    finished = [await _run_with_progress(ctx, orchestrator, job.id) for job in jobs]
    if as_json:
        documents = [
            _status_json(job, orchestrator.journal.items(job.id), ctx.workspace)
            for job, _ in finished
        ]
        ctx.say(json.dumps(documents, indent=2))
    else:
        for job, run_s in finished:
            _print_result(ctx, orchestrator, job, as_json=False, run_s=run_s)
    return max((exit_code(job) for job, _ in finished), default=0)


async def cmd_retry(ctx: Context, args: argparse.Namespace) -> int:
    named = (part.strip() for part in (args.items or "").split(","))
    items = list(dict.fromkeys(part for part in named if part)) or None
    with _orchestrator(ctx, must_exist=True) as orchestrator:
        await orchestrator.preflight(args.job)  # a missing key must not strand reset items
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

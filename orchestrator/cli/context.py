"""What every command gets (`Context`), and the helpers commands share: the orchestrator they
open, the spec they read with the command line's flags over it, and how a job's end is printed."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

from ..errors import NotFoundError
from ..records import ItemRecord, JobRecord
from ..service import Orchestrator
from ..spec import JobSpec, apply_overrides
from ..specfile import load_spec
from ..storage import Workspace
from .display import JobDisplay
from .report import item_json, job_json, job_summary, summary_table

__all__ = [
    "Context",
    "OutputLost",
    "opened",
    "print_result",
    "spec_from_args",
    "status_json",
    "with_overrides",
]


class OutputLost(Exception):
    """The command's output could not be written: stdout is a file on a full disk, say."""


@dataclass
class Context:
    """Where the workspace is, the environment, where to print, and what the command is at."""

    workspace: Workspace
    env: Mapping[str, str]
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    progress: bool | None = None
    """Draw a live display: None means only when stderr is a terminal."""
    stale_after_s: float = 300.0
    """When another process's lock counts as abandoned."""
    current_job: str | None = None
    """The job being run, so an interrupt can say how to resume it."""
    stopped_by: str | None = None
    """The signal that stopped the command, if not Ctrl-C: "SIGTERM" or "SIGHUP"."""
    notes: list[str] = field(default_factory=list)
    """Remarks on the input, printed once it is accepted (bad input stays one line)."""
    orchestrator: Orchestrator | None = None
    """The workspace's orchestrator while the command has it open (see `opened`)."""
    display: JobDisplay | None = None
    """The live display while one is shown: a note goes above it."""
    winding_down: bool = False
    """A first Ctrl-C asked the runs here to finish the calls under way and stop."""

    def say(self, text: str) -> None:
        """Print to the output; `OutputLost` if it cannot be written (a reader that left is
        a `BrokenPipeError`, as before)."""
        try:
            print(text, file=self.out, flush=True)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise OutputLost(getattr(error, "strerror", None) or str(error)) from None

    def note(self, text: str) -> None:
        if self.display is not None:
            self.display.note(text)
        else:
            print(text, file=self.err, flush=True)

    def interactive(self) -> bool:
        """A person is at the terminal: questions can be asked."""
        return sys.stdin.isatty() and self.err.isatty()

    async def ask(self, question: str, *, default: bool) -> bool:
        """Ask a yes/no question on the terminal (read off the event loop); Enter takes the
        default, end of input says no."""
        print(question, end=" ", file=self.err, flush=True)
        answer = await asyncio.to_thread(sys.stdin.readline)
        if not answer:
            return False
        answer = answer.strip().lower()
        return default if not answer else answer in ("y", "yes")

    def accepted(self) -> None:
        """The input was accepted: print the remarks kept for this moment."""
        for text in self.notes:
            self.note(text)
        self.notes.clear()


@asynccontextmanager
async def opened(ctx: Context, *, must_exist: bool = False) -> AsyncIterator[Orchestrator]:
    """The workspace's orchestrator; leaving it interrupts what runs here (resumable)."""
    if must_exist and not ctx.workspace.journal_dir.is_dir():
        raise NotFoundError(
            f"no workspace at {ctx.workspace.root}; run a job first, or pass --workspace DIR"
        )
    async with Orchestrator(
        ctx.workspace, env=ctx.env, stale_after_s=ctx.stale_after_s
    ) as orchestrator:
        ctx.orchestrator = orchestrator
        try:
            yield orchestrator
        finally:
            ctx.orchestrator = None


def spec_from_args(ctx: Context, args: argparse.Namespace) -> JobSpec:
    stdin = sys.stdin.buffer if args.spec == "-" else None
    spec = load_spec(Path(args.spec), fmt=args.format, stdin=stdin)
    return with_overrides(ctx, spec, args)


def with_overrides(ctx: Context, spec: JobSpec, args: argparse.Namespace) -> JobSpec:
    """The spec with the command line's flags over it.

    `--provider` naming another provider than the spec's drops what the spec wrote for its own
    provider (its `provider_options`, and its `model` unless `--model` is given), and says so.
    """
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
        model=args.model,
        concurrency=args.concurrency,
        max_concurrency=args.max_concurrency,
        rate_per_minute=args.rate,
        timeout_s=args.timeout,
        max_attempts=args.max_attempts,
        max_rate_limited=args.max_rate_limited,
        key=args.key,
        name=args.name,
        allow_unknown_model=args.allow_unknown_model,
        cache=False if getattr(args, "no_cache", False) else None,
    )


def status_json(job: JobRecord, items: list[ItemRecord], workspace: Workspace) -> dict[str, Any]:
    return {
        "job": job_json(job, workspace),
        "items": [item_json(item, workspace) for item in items],
    }


def print_result(
    ctx: Context,
    job: JobRecord,
    items: list[ItemRecord],
    as_json: bool,
    *,
    run_s: float | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """A job's end: JSON (with `extra` fields), a table on a terminal, plain lines elsewhere."""
    if as_json:
        ctx.say(json.dumps({**status_json(job, items, ctx.workspace), **(extra or {})}, indent=2))
    elif ctx.out.isatty():
        Console(file=ctx.out).print(summary_table(job, items, ctx.workspace, run_s=run_s))
    else:
        ctx.say(job_summary(job, items, ctx.workspace, run_s=run_s))

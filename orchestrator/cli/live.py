"""Following one job to its end with the live display: the same for a job this process runs
(`run`, `start`, `resume`, `retry`) and for one another process runs (`watch`).

Two tasks race: one feeds the display from the job's events, one waits for the job to end.
The display is ticked every half second, so its clock and its waits move while every image
waits. No `wait_for` anywhere: on Python 3.11 it can swallow the cancellation Ctrl-C sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing

from ..eventlog import EventLog
from ..events import Event, JobFinished, JobInterrupted
from ..handle import JobHandle
from ..records import JobRecord
from ..tally import Tally
from .context import Context
from .display import JobDisplay
from .logs import logging_through

__all__ = ["follow_to_end"]

TICK_S = 0.5
DRAIN_S = 2.0
"""After the job ends, how long the display may take to show its last events."""


async def follow_to_end(ctx: Context, handle: JobHandle) -> tuple[JobRecord, float]:
    """Show the job live until it ends (or no process runs it); its final record and the
    seconds this took."""
    ctx.current_job = handle.id
    snapshot = await handle.snapshot()
    log = EventLog()
    log.load(snapshot)
    tally = Tally.from_snapshot(snapshot.job, snapshot.items, now=time.time(), seq=snapshot.seq)
    live = ctx.err.isatty() if ctx.progress is None else ctx.progress
    started = time.monotonic()
    with JobDisplay(tally, ctx.err, live=live) as display, _logged_above(ctx, display):
        ctx.display = display
        shown = asyncio.create_task(_show(handle.events(after=snapshot.seq), display, log))
        ticker = asyncio.create_task(_tick(display)) if live else None
        waiter = asyncio.create_task(handle.wait())
        try:
            await asyncio.wait({shown, waiter}, return_when=asyncio.FIRST_COMPLETED)
            job = await waiter  # raises why the run stopped, if it did
            await _drain(shown)
        finally:
            for task in (shown, ticker, waiter):
                if task is not None:
                    task.cancel()
            await asyncio.wait([task for task in (shown, ticker, waiter) if task is not None])
            ctx.display = None
        final = await handle.snapshot()
        ended = Tally.from_snapshot(final.job, final.items, now=time.time(), seq=final.seq)
        ended.finished = not final.job.active  # no run goes on: nothing waits, no ETA
        display.resync(ended)
    return job, time.monotonic() - started


def _logged_above(ctx: Context, display: JobDisplay) -> contextlib.AbstractContextManager[None]:
    """Log lines bound for the terminal go above the live display, not through it."""
    if not display.live:
        return contextlib.nullcontext()
    return logging_through(ctx.err, lambda line: display.note(line, style=""))


async def _show(events: AsyncGenerator[Event, None], display: JobDisplay, log: EventLog) -> None:
    """Feed the display (and the log) until the job's run ends."""
    async with aclosing(events):
        async for event in events:
            display.handle(event)
            log.handle(event)
            if isinstance(event, JobFinished | JobInterrupted):
                return


async def _drain(shown: asyncio.Task[None]) -> None:
    """Let the display show the job's last events (bounded: the end is printed anyway)."""
    try:
        async with asyncio.timeout(DRAIN_S):
            await asyncio.wait([shown])
    except TimeoutError:
        pass


async def _tick(display: JobDisplay) -> None:
    while True:
        await asyncio.sleep(TICK_S)
        display.refresh()

"""Following a job for a notebook view: its events applied to the view's `JobFeed` for as long
as some process (this kernel, a CLI in a terminal) runs the job.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing

from ..feed import JobFeed
from ..handle import JobHandle

__all__ = ["LIVENESS_S", "apply_events"]

LIVENESS_S = 2.0
"""While the job is quiet, how often to look that some process still runs it."""


async def apply_events(handle: JobHandle, feed: JobFeed, after: int) -> None:
    """Apply the job's events after seq `after` to `feed` until the job ends and nobody runs
    it. The end of a run is looked past: a retry may have started another run of the job."""
    seq = after
    while await handle.runner_live():
        try:
            async with asyncio.timeout(LIVENESS_S):
                async with aclosing(handle.events(after=seq)) as events:
                    async for event in events:
                        feed.apply(event)
                        seq = event.seq
                        if feed.ended(event):
                            break  # the run ended: look whether another one goes on
        except TimeoutError:
            continue

"""Following a job's events live, wherever the job runs, with no gap and no duplicate.

Events committed in this process reach the in-process bus at once; events committed by another
process (a CLI run, a `retry` typed in another terminal) are only in the journal's event log.
`follow` listens to both. Sequence numbers are gapless across the workspace, so a jump on the bus
(another process committed in between, or this reader fell behind and the bus dropped events)
is filled from the log before anything later is handed out; when the bus is quiet, the log is
read every `poll_s`. Every event after `after` is yielded once, in sequence order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from .bus import EventBus, Subscription
from .events import Event
from .journal import Journal

__all__ = ["follow"]

POLL_S = 0.25
"""How often the log is read while the bus is quiet (events from other processes)."""


async def follow(
    journal: Journal,
    bus: EventBus,
    job_id: str | None,
    *,
    after: int = 0,
    poll_s: float = POLL_S,
) -> AsyncGenerator[Event, None]:
    """Yield the job's (or, with `job_id` None, every) event after seq `after`, forever."""
    position = after
    with bus.subscribe(maxsize=10_000) as subscription:
        backlog, position = await journal.events_since(position, job_id)
        for event in backlog:
            yield event
        while True:
            heard = await _next(subscription, poll_s)
            if heard is not None and heard.seq <= position:
                continue  # already read from the log
            if heard is not None and heard.seq == position + 1:
                position = heard.seq
                if job_id is None or heard.job_id == job_id:
                    yield heard
                continue
            # a jump on the bus, or a quiet bus: what is missing comes from the log
            missed, position = await journal.events_since(position, job_id)
            for found in missed:
                yield found


async def _next(subscription: Subscription, poll_s: float) -> Event | None:
    """The bus's next event, or None when none came within `poll_s`."""
    buffered = subscription.get_nowait()  # a commit's events arrive together: no timer for them
    if buffered is not None:
        return buffered
    try:
        async with asyncio.timeout(poll_s):
            return await subscription.get()
    except TimeoutError:
        return None

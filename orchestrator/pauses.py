"""An attempt's timeout that counts the time the request took, not the time the process stood still.

When a process is paused (SIGSTOP, a debugger, a laptop lid, a loop blocked for seconds), every
timer is overdue when it wakes: a plain `asyncio.timeout` then cancels requests whose answers had
already arrived, and the images are paid for again. `PauseWatch` notices such gaps (a tick that
comes far later than asked for), and `attempt_timeout` moves its deadline on by the pauses seen
since the attempt began, so only time the request really had counts against it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["PauseWatch", "attempt_timeout"]

TICK_S = 0.5
PAUSE_S = 2.0
"""A gap between two looks at the clock longer than this counts as a pause."""


class PauseWatch:
    """Adds up the time the event loop stood still, as seen by anyone who looks."""

    def __init__(self) -> None:
        self.paused_s = 0.0
        self._seen: float | None = None
        self._ticker: asyncio.Task[None] | None = None

    def observe(self) -> float:
        """Look at the loop's clock now; returns the pauses counted so far."""
        now = asyncio.get_running_loop().time()
        if self._seen is not None and now - self._seen > PAUSE_S:
            self.paused_s += now - self._seen - TICK_S
        self._seen = now
        return self.paused_s

    def start(self) -> None:
        """Look every `TICK_S` while attempts run (call from the loop)."""
        if self._ticker is None or self._ticker.done():
            self.observe()
            self._ticker = asyncio.create_task(self._tick(), name="pause-watch")

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.observe()


@asynccontextmanager
async def attempt_timeout(seconds: float, pauses: PauseWatch) -> AsyncIterator[None]:
    """Like `asyncio.timeout(seconds)`, with the deadline moved on by pauses (`TimeoutError`)."""
    loop = asyncio.get_running_loop()
    counted = pauses.observe()
    async with asyncio.timeout(None) as scope:
        deadline = loop.time() + seconds
        handle: asyncio.TimerHandle

        def check() -> None:
            nonlocal counted, deadline, handle
            now_paused = pauses.observe()
            if now_paused > counted:
                deadline += now_paused - counted
                counted = now_paused
                handle = loop.call_at(deadline, check)
            else:
                scope.reschedule(loop.time())  # expire now

        handle = loop.call_at(deadline, check)
        try:
            yield
        finally:
            handle.cancel()

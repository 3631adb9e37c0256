"""`Slots`: a number of places, handed out first come, first served, with no polling.

Waiters are futures in a first-in-first-out queue; a release hands its place straight to the next
waiter. The number of places can change at any time (`set_limit`): a lower one takes no place
back from its holder. A waiter that is cancelled passes on a place it was handed just as it was
cancelled, and `CancelledError` always propagates. Not thread-safe: use it from one event loop at
a time.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Slots"]


class Slots:
    """`limit` slots, handed out first come, first served; a release hands one straight over."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()  # cancelled while queued
        if self.taken < self.limit and not self._waiters:
            self.taken += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # handed a slot just as the cancel came: pass it on
            raise

    def set_limit(self, limit: int) -> None:
        """Hand out `limit` slots from now on. More: those waiting take them at once. Fewer: no
        slot is taken back; none is handed out until enough are released."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        self.limit = limit
        self.hand_over()

    def release(self) -> None:
        self.taken -= 1
        self.hand_over()

    def hand_over(self) -> None:
        while self.taken < self.limit and self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                self.taken += 1

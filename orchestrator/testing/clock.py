"""`FakeClock`: a `Clock` for tests, on which time moves only when something sleeps or the test
says so.

Pass it wherever the orchestrator takes a `clock=` (the journal, the locks, the runner) to test
timeouts, heartbeats and backoffs without real sleeps.
"""

from __future__ import annotations

import asyncio

__all__ = ["FakeClock"]


class FakeClock:
    """A clock for tests: time moves only when something sleeps or the test calls `advance`.

    `sleep(s)` records `s` in `sleeps`, yields to the event loop once, then moves the clock on to
    at least the moment that sleep was due to end. A lone sleeper therefore sees the clock move by
    exactly `s`; sleepers that wait at the same time share the wait instead of adding them up.
    Nothing ever really waits.
    """

    def __init__(self, start: float = 1000.0, wall_start: float = 1_700_000_000.0) -> None:
        self._monotonic = start
        self._offset = wall_start - start
        self.sleeps: list[float] = []
        """Every duration passed to `sleep`, in call order."""

    def monotonic(self) -> float:
        return self._monotonic

    def time(self) -> float:
        return self._monotonic + self._offset

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by `seconds` (negative values are ignored)."""
        self._monotonic += max(0.0, seconds)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        wake_at = self._monotonic + max(0.0, seconds)
        await asyncio.sleep(0)
        self._monotonic = max(self._monotonic, wake_at)

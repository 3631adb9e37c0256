"""Per-provider pacing: evenly spaced starts (asyncio-throttle) and a shared 429 cool-down."""

from __future__ import annotations

from typing import Protocol

from asyncio_throttle.throttler import Throttler

from .clock import Clock

__all__ = ["RateGate"]


class _Slots(Protocol):
    """The part of `asyncio_throttle.Throttler` used here (its methods carry no type hints)."""

    async def acquire(self) -> None: ...


class RateGate:
    """The gate every attempt at one provider passes before it calls the provider.

    With a rate of N per minute, starts are spaced 60/N seconds apart with no burst. After a
    429, `cool_down` holds every attempt back until the provider's wait is over. The rate part
    runs on the real clock (asyncio-throttle's own); the cool-down runs on the injected `clock`.
    """

    def __init__(self, rate_per_minute: float | None, clock: Clock) -> None:
        if rate_per_minute is not None and rate_per_minute <= 0:
            raise ValueError(f"rate_per_minute must be positive, not {rate_per_minute}")
        self._clock = clock
        self._cooldown_until = float("-inf")
        self._throttler: _Slots | None = None
        if rate_per_minute is not None:
            self._throttler = Throttler(rate_limit=1, period=60.0 / rate_per_minute)

    async def wait_turn(self) -> None:
        """Wait out any cool-down, then take a rate slot.

        If a 429 arrived while this attempt waited for its slot, the slot is given up: the
        attempt waits out the new cool-down and queues for a fresh slot, so the attempts held
        back by a cool-down do not all start at the same moment when it ends.
        """
        while True:
            await self._wait_cooldown()
            if self._throttler is None:
                return
            await self._throttler.acquire()
            if self.cooldown_remaining() <= 0:
                return

    def cool_down(self, seconds: float) -> None:
        """Hold every attempt back until `seconds` from now; never shortens a longer cool-down."""
        self._cooldown_until = max(self._cooldown_until, self._clock.monotonic() + seconds)

    def cooldown_remaining(self) -> float:
        """Seconds left of the current cool-down; 0 when there is none."""
        return max(0.0, self._cooldown_until - self._clock.monotonic())

    async def _wait_cooldown(self) -> None:
        while (remaining := self.cooldown_remaining()) > 0:
            await self._clock.sleep(remaining)

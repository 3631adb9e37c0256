"""`Pacer`: evenly spaced starts at a rate per minute, woken by one timer, never by polling.

Waiters are futures in a first-in-first-out queue; the pacer wakes its queue with one
`loop.call_at` timer set for the next allowed start. A waiter that is cancelled passes its turn
on (a start it was handed just as it was cancelled goes to the next in line) and `CancelledError`
always propagates. All time is the running loop's `loop.time()`. Not thread-safe: use a pacer
from one event loop at a time.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Pacer", "check_rate", "running_loop_time"]

_NEVER = float("-inf")


def running_loop_time() -> float | None:
    """The running loop's time, or None outside a loop (for `__repr__`)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return None


def check_rate(rate_per_minute: float | None, burst: int) -> None:
    """Raise `ValueError` unless the rate is positive or None and the burst at least 1."""
    if rate_per_minute is not None and not rate_per_minute > 0:
        raise ValueError(f"rate_per_minute must be positive or None, not {rate_per_minute}")
    if burst < 1:
        raise ValueError(f"burst must be at least 1, not {burst}")


def _rate_text(rate_per_minute: float | None, burst: int) -> str:
    rate = "unlimited" if rate_per_minute is None else f"{rate_per_minute:g}/min"
    return rate if burst == 1 else f"{rate} burst {burst}"


class Pacer:
    """Evenly spaced starts: `rate_per_minute` of them (None: no limit), at most `burst` at once.

    `await pacer.wait()` returns at the next allowed start, in arrival order. Starts follow a
    schedule (`next_start`), not the waiters: an idle pacer saves up to `burst` starts, and a
    waiter that is cancelled leaves its start to the next one, at the same time. `hold_until(t)`
    allows no start before loop time `t` and spends the burst, so held-back starts resume one
    interval apart rather than all at once.
    """

    def __init__(self, rate_per_minute: float | None, *, burst: int = 1) -> None:
        check_rate(rate_per_minute, burst)
        self._interval = 0.0 if rate_per_minute is None else 60.0 / rate_per_minute
        self._burst = burst
        self._due = _NEVER
        """When the next start is due with no burst (it moves on one interval per start)."""
        self._hold = _NEVER
        self._waiters: deque[tuple[asyncio.Future[bool], bool]] = deque()
        """(future, leaves on a hold) per waiter; a cancelled future is skipped when reached."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def rate_per_minute(self) -> float | None:
        return None if self._interval == 0 else 60.0 / self._interval

    @property
    def burst(self) -> int:
        return self._burst

    @property
    def next_start(self) -> float:
        """Loop time of the next allowed start (in the past when one is allowed now)."""
        return max(self._hold, self._due - (self._burst - 1) * self._interval)

    @property
    def waiting(self) -> int:
        """Waiters in the queue now."""
        return sum(not future.done() for future, _ in self._waiters)

    def set_rate(self, rate_per_minute: float | None, *, burst: int = 1) -> None:
        """Pace at a new rate from now on: the next start moves to one new interval after the last.

        Waiters keep their places.
        """
        check_rate(rate_per_minute, burst)
        interval = 0.0 if rate_per_minute is None else 60.0 / rate_per_minute
        self._due += interval - self._interval
        self._interval, self._burst = interval, burst
        if self._loop is not None:
            self._arm()

    async def wait(self) -> None:
        """Return at the next allowed start, first come first served."""
        await self._queue(leave_on_hold=False)

    async def wait_unless_held(self) -> bool:
        """Like `wait`, but return False, holding no start, as soon as a hold begins."""
        return await self._queue(leave_on_hold=True)

    def give_back(self) -> None:
        """Return a start taken by `wait` and not used (once per start); the next waiter gets it."""
        self._due -= self._interval
        self._wake(self._bind().time())

    def hold_until(self, when: float) -> None:
        """Allow no start before loop time `when` (never shortens a longer hold); spend the burst.

        Waiters in `wait_unless_held` leave the queue with False; those in `wait` keep their
        places and start after `when`, one interval apart.
        """
        if when <= max(self._hold, self._bind().time()):
            return
        self._hold = when
        self._due = max(self._due, when + (self._burst - 1) * self._interval)
        leaving = [future for future, leaves in self._waiters if leaves]
        self._waiters = deque(waiter for waiter in self._waiters if not waiter[1])
        for future in leaving:
            if not future.done():
                future.set_result(False)
        self._arm()

    async def _queue(self, *, leave_on_hold: bool) -> bool:
        loop = self._bind()
        self._drop_cancelled()
        if not self._waiters and loop.time() >= self.next_start:
            self._take(loop.time())
            return True
        future: asyncio.Future[bool] = loop.create_future()
        self._waiters.append((future, leave_on_hold))
        self._arm()
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.result():
                self.give_back()  # handed a start just as the cancel came: pass it on
            else:
                self._arm()
            raise

    def _take(self, now: float) -> None:
        self._due = max(self._due, now) + self._interval

    def _wake(self, now: float) -> None:
        """Hand out every start allowed at `now`, in order, then set the timer for the next."""
        while self._waiters and now >= self.next_start:
            future, _ = self._waiters.popleft()
            if not future.done():
                future.set_result(True)
                self._take(now)
        self._arm()

    def _on_timer(self, when: float) -> None:
        self._timer = None
        assert self._loop is not None
        # The loop runs a timer up to its clock resolution early; the start is still due `when`.
        self._wake(max(self._loop.time(), when))

    def _arm(self) -> None:
        """Keep exactly one timer, set for the next start while anyone waits."""
        self._drop_cancelled()
        when = self.next_start
        if self._timer is not None:
            if self._waiters and self._timer.when() == when:
                return
            self._timer.cancel()
            self._timer = None
        if self._waiters and self._loop is not None:
            self._timer = self._loop.call_at(when, self._on_timer, when)

    def _drop_cancelled(self) -> None:
        while self._waiters and self._waiters[0][0].done():
            self._waiters.popleft()

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            if self.waiting:
                raise RuntimeError(f"{self!r} is waited on from another event loop")
            if self._timer is not None:
                self._timer.cancel()
            self._waiters.clear()
            self._loop, self._timer = loop, None
        return loop

    def __repr__(self) -> str:
        now = running_loop_time()
        start = self.next_start
        if now is None:
            when = " now" if start == _NEVER else f" at {start:.3f}"
        else:
            when = f" in {start - now:.3f}s" if start > now else " now"
        rate = _rate_text(self.rate_per_minute, self._burst)
        return f"<Pacer {rate}, next start{when}, {self.waiting} waiting>"

"""Provider lanes: the concurrency, pacing and 429 cool-down that all jobs on one provider share.

A lane belongs to a provider and its key, not to a job: every job a process runs against the same
provider, model and key takes its turns from the same `Lane`, so two jobs at 12/min together stay
at 12/min, and a 429 seen by one job cools the other down too.

    Lanes           one per process: key -> Lane, tightened to the strictest job
      Lane          one per provider + model + key fingerprint
        turn()      cool-down gate  ->  slot  ->  pacer start  ->  the attempt  ->  slot back
          gate      a Pacer with no rate, held while the provider cools down (holds no slot)
          slots     `concurrency` of them, first come first served
          Pacer     evenly spaced starts, at most `burst` at once

Nothing here polls. Every waiter is a future in a first-in-first-out queue; a Pacer wakes its
queue with one `loop.call_at` timer set for the next allowed start, slots are handed over on
release. A waiter that is cancelled passes its turn on (a start or a slot it was handed just as it
was cancelled goes to the next in line) and `CancelledError` always propagates. All time is the
running loop's `loop.time()`, so tests run them on a loop whose clock jumps to the next timer.
Not thread-safe: use a lane from one event loop at a time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass

__all__ = ["Lane", "LaneLimits", "Lanes", "Pacer"]

_NEVER = float("-inf")


def _loop_time() -> float | None:
    """The running loop's time, or None outside a loop (for `__repr__`)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return None


def _check_rate(rate_per_minute: float | None, burst: int) -> None:
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
        _check_rate(rate_per_minute, burst)
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
        _check_rate(rate_per_minute, burst)
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
        now = _loop_time()
        start = self.next_start
        if now is None:
            when = " now" if start == _NEVER else f" at {start:.3f}"
        else:
            when = f" in {start - now:.3f}s" if start > now else " now"
        rate = _rate_text(self.rate_per_minute, self._burst)
        return f"<Pacer {rate}, next start{when}, {self.waiting} waiting>"


class _Slots:
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

    def release(self) -> None:
        self.taken -= 1
        self.hand_over()

    def hand_over(self) -> None:
        while self.taken < self.limit and self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                self.taken += 1


@dataclass(frozen=True, slots=True)
class LaneLimits:
    """What a lane allows: slots at once, starts per minute (None: no limit), starts at once."""

    concurrency: int
    rate_per_minute: float | None
    burst: int = 1

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")
        _check_rate(self.rate_per_minute, self.burst)

    def tighter(self, other: LaneLimits) -> LaneLimits:
        """The stricter of each limit (a rate of None is the loosest)."""
        rates = [r for r in (self.rate_per_minute, other.rate_per_minute) if r is not None]
        return LaneLimits(
            concurrency=min(self.concurrency, other.concurrency),
            rate_per_minute=min(rates) if rates else None,
            burst=min(self.burst, other.burst),
        )


class Lane:
    """The shared limits of one provider and key: slots, a `Pacer`, and the 429 cool-down.

    `async with lane.turn():` is one attempt. It waits out any cool-down holding no slot, takes a
    slot, then waits for its pacer start. If a cool-down begins before the start, it gives the
    slot (and any start) back and queues again behind the cool-down, so no slot sits idle through
    one and the held-back attempts restart one interval apart. The `key` shows in `repr`: make it
    a fingerprint, never a secret.
    """

    def __init__(
        self, key: Hashable, limits: LaneLimits, *, max_cooldown_s: float = 3600.0
    ) -> None:
        if not max_cooldown_s > 0:
            raise ValueError(f"max_cooldown_s must be positive, not {max_cooldown_s}")
        self.key = key
        self.max_cooldown_s = max_cooldown_s
        self._limits = limits
        self._slots = _Slots(limits.concurrency)
        self._pacer = Pacer(limits.rate_per_minute, burst=limits.burst)
        self._gate = Pacer(None)
        self._cooldown_until = _NEVER
        self._cooldowns = 0
        """How many cool-downs began or grew: a turn that sees it change queues again."""
        self._queued = 0
        self._running = 0

    @property
    def limits(self) -> LaneLimits:
        return self._limits

    @property
    def in_use(self) -> int:
        """Slots taken now: turns running, and turns holding a slot while they wait to start."""
        return self._slots.taken

    @property
    def running(self) -> int:
        """Turns inside their `async with` block: the attempts under way."""
        return self._running

    @property
    def waiting(self) -> int:
        """Turns not started yet: in a cool-down, queued for a slot, or for their pacer start."""
        return self._queued

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """One attempt: enter when the lane allows a start; the slot is given back on exit."""
        self._queued += 1
        try:
            while not await self._try_start():
                pass
        finally:
            self._queued -= 1
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            self._slots.release()

    def cool_down(self, seconds: float) -> None:
        """Start no turn for `seconds` (at most `max_cooldown_s`); never shortens a longer one."""
        if not seconds > 0:
            return
        until = asyncio.get_running_loop().time() + min(seconds, self.max_cooldown_s)
        if until <= self._cooldown_until:
            return
        self._cooldown_until = until
        self._cooldowns += 1
        self._gate.hold_until(until)
        self._pacer.hold_until(until)

    def cooldown_remaining(self) -> float:
        """Seconds left of the current cool-down; 0 when there is none."""
        return max(0.0, self._cooldown_until - asyncio.get_running_loop().time())

    def tighten(self, limits: LaneLimits) -> bool:
        """Keep the stricter of each limit, from the next turn on; True if any changed."""
        tighter = self._limits.tighter(limits)
        if tighter == self._limits:
            return False
        self._limits = tighter
        self._slots.limit = tighter.concurrency
        self._pacer.set_rate(tighter.rate_per_minute, burst=tighter.burst)
        return True

    async def _try_start(self) -> bool:
        """Wait for a start once; False (holding nothing) if a cool-down began meanwhile."""
        await self._gate.wait()
        seen = self._cooldowns
        await self._slots.acquire()
        try:
            started = self._cooldowns == seen and await self._pacer.wait_unless_held()
        except BaseException:
            self._slots.release()
            raise
        if started and self._cooldowns == seen:
            return True
        if started:  # a cool-down began between the start and this turn waking up
            self._pacer.give_back()
        self._slots.release()
        return False

    def __repr__(self) -> str:
        now = _loop_time()
        cooling = ""
        if now is not None and self._cooldown_until > now:
            cooling = f", cooling down {self._cooldown_until - now:.3f}s"
        return (
            f"<Lane {self.key!r}: {self.in_use}/{self._limits.concurrency} slots in use,"
            f" {self._running} running, {self._queued} waiting{cooling}; {self._pacer!r}>"
        )


class Lanes:
    """The lanes of one process, by key (build it from provider, model and a key fingerprint).

    Asking again for a lane that exists returns the same `Lane`, tightened to the stricter of
    each limit: a lane never allows more than any job using it asked for, so no job exceeds its
    own limits because another shares its provider. Limits are never loosened while the registry
    lives; compare `lane.limits` with what you asked to tell whether the lane holds you tighter.
    """

    def __init__(self, *, max_cooldown_s: float = 3600.0) -> None:
        if not max_cooldown_s > 0:
            raise ValueError(f"max_cooldown_s must be positive, not {max_cooldown_s}")
        self.max_cooldown_s = max_cooldown_s
        self._lanes: dict[Hashable, Lane] = {}

    def get(
        self,
        key: Hashable,
        *,
        concurrency: int,
        rate_per_minute: float | None,
        burst: int = 1,
    ) -> Lane:
        """The lane for `key`, made with these limits or tightened to them."""
        limits = LaneLimits(concurrency, rate_per_minute, burst)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane(key, limits, max_cooldown_s=self.max_cooldown_s)
        else:
            lane.tighten(limits)
        return lane

    def __len__(self) -> int:
        return len(self._lanes)

    def __repr__(self) -> str:
        return f"<Lanes {list(self._lanes.values())!r}>"

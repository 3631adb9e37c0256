"""Provider lanes: the concurrency, pacing and 429 cool-down that all jobs on one provider share.

A lane belongs to a provider and its key, not to a job: every job a process runs against the same
provider, model and key takes its turns from the same `Lane`, so two jobs at 12/min together stay
at 12/min, and a 429 seen by one job cools the other down too.

    Lanes           one per process: key -> Lane, tightened to the strictest job
      Lane          one per provider + model + key fingerprint
        turn()      cool-down gate  ->  slot  ->  pacer start  ->  the attempt  ->  slot back
          gate      a Pacer with no rate, held while the provider cools down (holds no slot)
          Slots     `concurrency` of them, first come first served (slots.py)
          Pacer     evenly spaced starts, at most `burst` at once (pacer.py)

Nothing here polls. Every waiter is a future in a first-in-first-out queue; a Pacer wakes its
queue with one `loop.call_at` timer set for the next allowed start, slots are handed over on
release. A waiter that is cancelled passes its turn on (a start or a slot it was handed just as it
was cancelled goes to the next in line) and `CancelledError` always propagates. All time is the
running loop's `loop.time()`, so tests run them on a loop whose clock jumps to the next timer.
Not thread-safe: use a lane from one event loop at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from .pacer import Pacer, check_rate, running_loop_time
from .slots import Slots

__all__ = ["Lane", "LaneLimits", "Lanes"]

_NEVER = float("-inf")


@dataclass(frozen=True, slots=True)
class LaneLimits:
    """What a lane allows: slots at once, starts per minute (None: no limit), starts at once."""

    concurrency: int
    rate_per_minute: float | None
    burst: int = 1

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")
        check_rate(self.rate_per_minute, self.burst)

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
        self._slots = Slots(limits.concurrency)
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

    def set_limits(self, limits: LaneLimits) -> None:
        """Use exactly these limits from the next turn on (looser or tighter)."""
        self._limits = limits
        self._slots.limit = limits.concurrency
        self._slots.hand_over()  # more places: the ones waiting take them now
        self._pacer.set_rate(limits.rate_per_minute, burst=limits.burst)

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
        now = running_loop_time()
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
    own limits because another shares its provider. When a job is done with its lane
    (`release`), the lane goes back to the strictest limits of the jobs still using it, so in a
    long-lived process (the TUI) one strict job does not slow every later one; its cool-down, a
    fact about the provider, stays. Compare `lane.limits` with what you asked to tell whether
    the lane holds you tighter.
    """

    def __init__(self, *, max_cooldown_s: float = 3600.0) -> None:
        if not max_cooldown_s > 0:
            raise ValueError(f"max_cooldown_s must be positive, not {max_cooldown_s}")
        self.max_cooldown_s = max_cooldown_s
        self._lanes: dict[Hashable, Lane] = {}
        self._users: dict[Hashable, list[LaneLimits]] = {}
        """The limits each job now using a lane asked for."""

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
        users = self._users.setdefault(key, [])
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane(key, limits, max_cooldown_s=self.max_cooldown_s)
        elif users:
            lane.tighten(limits)
        else:
            lane.set_limits(limits)
        users.append(limits)
        return lane

    def release(
        self, key: Hashable, *, concurrency: int, rate_per_minute: float | None, burst: int = 1
    ) -> None:
        """One job that asked for the lane with these limits is done with it."""
        users = self._users.get(key, [])
        limits = LaneLimits(concurrency, rate_per_minute, burst)
        if limits in users:
            users.remove(limits)
        if users:
            strictest = users[0]
            for other in users[1:]:
                strictest = strictest.tighter(other)
            self._lanes[key].set_limits(strictest)

    def __len__(self) -> int:
        return len(self._lanes)

    def __repr__(self) -> str:
        return f"<Lanes {list(self._lanes.values())!r}>"

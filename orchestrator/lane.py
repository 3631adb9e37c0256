"""A provider lane: the concurrency, pacing and 429 cool-down that all jobs on one provider share.

A lane belongs to a provider and its key, not to a job: every job a process runs against the same
provider, model and key takes its turns from the same `Lane`, so two jobs at 12/min together stay
at 12/min, and a 429 seen by one job cools the other down too.

    Lanes           one per process: key -> Lane, tightened to the strictest job (lanes.py)
      Lane          one per provider + model + key fingerprint
        turn()      cool-down gate  ->  slot  ->  pacer start  ->  the attempt  ->  slot back
          gate      a Pacer with no rate, held while the provider cools down (holds no slot)
          Slots     `concurrency` of them, first come first served (slots.py)
          Pacer     evenly spaced starts, at most `burst` at once (pacer.py)
          Adaptive  with `adaptive` limits, how many slots: grown on successes, halved on 429s
                    (adaptive.py); the attempt tells its `Turn` how it went (lane_turn.py)
          Breaker   after 5 outage failures in a row (5xx, connection): a growing cool-down,
                    then one slot until the provider answers again (breaker.py)

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

from .adaptive import AdaptiveLimit
from .breaker import Breaker
from .lane_limits import LaneLimits
from .lane_turn import Turn
from .pacer import Pacer, running_loop_time
from .slots import Slots

__all__ = ["Lane", "LaneLimits", "Turn"]

_NEVER = float("-inf")


class Lane:
    """The shared limits of one provider and key: slots, a `Pacer`, and the 429 cool-down.

    `async with lane.turn() as turn:` is one attempt. It waits out any cool-down holding no slot,
    takes a slot, then waits for its pacer start. If a cool-down begins before the start, it gives
    the slot (and any start) back and queues again behind the cool-down, so no slot sits idle
    through one and the held-back attempts restart one interval apart.

    With adaptive limits the number of slots follows the provider's answers (`turn.succeeded()`,
    `turn.rate_limited()`). Fewer slots take effect at once but never stop an attempt under way;
    back up to a level that held before they open at once; beyond it, one at a time,
    `open_every_s` apart (or the quickest answer seen, image or 429, if that is sooner): a 429
    comes back in a moment while an image takes a minute, so the first 429 of a level too high
    stops the growth before many more calls go out. The `key` shows in `repr`: make it a
    fingerprint, never a secret.
    """

    def __init__(
        self,
        key: Hashable,
        limits: LaneLimits,
        *,
        max_cooldown_s: float = 3600.0,
        open_every_s: float = 0.5,
        breaker: Breaker | None = None,
    ) -> None:
        if not max_cooldown_s > 0:
            raise ValueError(f"max_cooldown_s must be positive, not {max_cooldown_s}")
        self.key = key
        self.max_cooldown_s = max_cooldown_s
        self.open_every_s = open_every_s
        self._limits = limits
        self._slots = Slots(limits.concurrency)
        self._pacer = Pacer(limits.rate_per_minute, burst=limits.burst)
        self._adaptive: AdaptiveLimit | None = None
        """Learnt from the provider's answers; kept while the lane's jobs change."""
        self._opening: asyncio.TimerHandle | None = None
        """Set while a slot opened lately: the next may open when it fires."""
        self._fastest_s = float("inf")
        """The quickest answer seen, image or 429, from its turn's start: a 429 takes no
        longer, so a slot opened that long after the last is never ahead of its answer."""
        self._watchers: list[asyncio.Future[None]] = []
        """`changed` callers, woken when the concurrency changes."""
        self._gate = Pacer(None)
        self._cooldown_until = _NEVER
        self._cooldowns = 0
        """How many cool-downs began or grew: a turn that sees it change queues again."""
        self._queued = 0
        self._running = 0
        self.breaker = breaker or Breaker()
        self._use(limits)

    @property
    def limits(self) -> LaneLimits:
        return self._limits

    @property
    def concurrency(self) -> int:
        """Slots the lane hands out now: its limit, or (adaptive) what it has learnt, or on the
        way there."""
        return self._slots.limit

    @property
    def adaptive(self) -> AdaptiveLimit | None:
        """What the lane has learnt, while its limits are adaptive."""
        return self._adaptive if self._limits.adaptive else None

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
    async def turn(self) -> AsyncIterator[Turn]:
        """One attempt: enter when the lane allows a start; the slot is given back on exit."""
        self._queued += 1
        try:
            while not await self._try_start():
                pass
        finally:
            self._queued -= 1
        self._running += 1
        learnt = self.adaptive
        started = asyncio.get_running_loop().time()
        try:
            yield Turn(self, learnt.cuts if learnt is not None else 0, self._running, started)
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

    async def changed(self, seen: int | None) -> int:
        """The lane's concurrency, once it is not `seen` (at once if it is not now)."""
        while self.concurrency == seen:
            future = asyncio.get_running_loop().create_future()
            self._watchers.append(future)
            await future
        return self.concurrency

    def set_limits(self, limits: LaneLimits) -> None:
        """Use exactly these limits from the next turn on (looser or tighter)."""
        self._pacer.set_rate(limits.rate_per_minute, burst=limits.burst)
        self._use(limits)

    def tighten(self, limits: LaneLimits) -> bool:
        """Keep the stricter of each limit, from the next turn on; True if any changed."""
        tighter = self._limits.tighter(limits)
        if tighter == self._limits:
            return False
        self._pacer.set_rate(tighter.rate_per_minute, burst=tighter.burst)
        self._use(tighter)
        return True

    def _use(self, limits: LaneLimits) -> None:
        self._limits = limits
        if limits.adaptive and self._adaptive is None:
            self._adaptive = AdaptiveLimit(limits.concurrency)
        elif limits.adaptive and self._adaptive is not None:
            self._adaptive.set_maximum(limits.concurrency)
        self._stop_opening()
        self._set_slots(self._target())

    def _target(self) -> int:
        if self.breaker.tripped:
            return 1  # the probe
        learnt = self.adaptive
        return learnt.limit if learnt is not None else self._limits.concurrency

    def _answered(self, turn: Turn) -> None:
        took = asyncio.get_running_loop().time() - turn.started
        self._fastest_s = min(self._fastest_s, max(0.0, took))

    def _succeeded(self, turn: Turn) -> None:
        self._answered(turn)
        if self.breaker.answered():
            self._set_slots(self._target())
        learnt = self.adaptive
        if learnt is not None:  # full: no slot was free
            learnt.on_success(full=self._slots.taken >= self._slots.limit)
            self._resize()

    def _rate_limited(self, turn: Turn, wait_s: float) -> None:
        self._answered(turn)
        if self.breaker.answered():
            self._set_slots(self._target())
        self.cool_down(wait_s)
        learnt = self.adaptive
        if learnt is not None:
            level = max(turn.level, self._running)  # under way as it started, or now
            learnt.on_rate_limited(cuts_at_start=turn.cuts, level=level)
            self._resize()

    def _unavailable(self, turn: Turn) -> None:
        wait = self.breaker.failed(asyncio.get_running_loop().time(), turn.started)
        if wait is not None:
            self.cool_down(wait)
            self._stop_opening()
            self._set_slots(self._target())

    def _resize(self) -> None:
        """Fewer slots at once; back up to a level that held at once; above it, one more if
        none opened in the last `open_every_s`."""
        target, current = self._target(), self._slots.limit
        held = self._held()
        if target <= current:
            self._stop_opening()
            self._set_slots(target)
        elif target <= held:  # that many drew no 429 before: nothing to feel the way for
            self._set_slots(target)
        elif self._opening is None:
            self._set_slots(max(current + 1, held))
            loop = asyncio.get_running_loop()
            pause = min(self.open_every_s, self._fastest_s)
            self._opening = loop.call_later(pause, self._opened)

    def _held(self) -> int:
        """The most slots known to draw no 429 (the adaptive limit's `good`), or 0."""
        learnt = self.adaptive
        return learnt.good if learnt is not None and learnt.good is not None else 0

    def _opened(self) -> None:
        self._opening = None
        self._resize()

    def _stop_opening(self) -> None:
        if self._opening is not None:
            self._opening.cancel()
            self._opening = None

    def _set_slots(self, limit: int) -> None:
        """Hand out `limit` slots (more: the ones waiting take them now); wake `changed`."""
        if limit == self._slots.limit:
            return
        self._slots.set_limit(limit)
        watchers, self._watchers = self._watchers, []
        for future in watchers:
            if not future.done():
                future.set_result(None)

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
        if self.breaker.tripped:
            cooling += ", breaker open"
        auto = f" (auto, at most {self._limits.concurrency})" if self.adaptive else ""
        return (
            f"<Lane {self.key!r}: {self.in_use}/{self.concurrency}{auto} slots in use,"
            f" {self._running} running, {self._queued} waiting{cooling}; {self._pacer!r}>"
        )

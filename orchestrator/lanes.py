"""The lanes of one process: one `Lane` (see `lane.py`) per provider, model and key, shared by
every job on it, with the limits of the strictest job using it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable

from .lane import Lane, Turn
from .lane_limits import LaneLimits

__all__ = ["Lane", "LaneLimits", "Lanes", "Turn", "report_concurrency"]


class Lanes:
    """The lanes of one process, by key (build it from provider, model and a key fingerprint).

    Asking again for a lane that exists returns the same `Lane`, tightened to the stricter of
    each limit: a lane never allows more than any job using it asked for, so no job exceeds its
    own limits because another shares its provider. When a job is done with its lane
    (`release`), the lane goes back to the strictest limits of the jobs still using it, so in a
    long-lived process (the TUI) one strict job does not slow every later one; its cool-down and
    what an adaptive lane has learnt, facts about the provider, stay. Compare `lane.limits` with
    what you asked to tell whether the lane holds you tighter.
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
        adaptive: bool = False,
    ) -> Lane:
        """The lane for `key`, made with these limits or tightened to them."""
        limits = LaneLimits(concurrency, rate_per_minute, burst, adaptive)
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
        self,
        key: Hashable,
        *,
        concurrency: int,
        rate_per_minute: float | None,
        burst: int = 1,
        adaptive: bool = False,
    ) -> None:
        """One job that asked for the lane with these limits is done with it."""
        users = self._users.get(key, [])
        limits = LaneLimits(concurrency, rate_per_minute, burst, adaptive)
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


async def report_concurrency(
    lane: Lane, record: Callable[[int], Awaitable[object]], *, every_s: float
) -> None:
    """`record` the lane's concurrency now and each time it changes, at most once per `every_s`
    (the latest value then), until cancelled."""
    reported: int | None = None
    while True:
        reported = await lane.changed(reported)
        await record(reported)
        await asyncio.sleep(every_s)

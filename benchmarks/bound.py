"""The lower bound on a batch's makespan (issue 11), and the schedules it is compared with.

For N items with latencies L_i, concurrency C, a provider concurrency cap K and a start rate R per
minute with burst B, no schedule can finish sooner than

    LB = max(sum(L_i) / min(C, K), max(L_i), (N - B) * 60 / R + min(L_i))

(the work spread over every slot, the slowest image, the last start the rate allows plus the
quickest image). Every makespan is reported as a ratio to LB computed on the same draws.
Pure functions of their arguments.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

__all__ = ["fifo_makespan", "fixed_batch_makespan", "lower_bound"]


def lower_bound(
    latencies: Sequence[float],
    concurrency: int,
    *,
    cap: int | None = None,
    rate_per_minute: float | None = None,
    burst: int = 1,
) -> float:
    """LB for these latencies (seconds) under these limits; no rate means no rate term."""
    if not latencies:
        raise ValueError("the bound of no items is not defined")
    slots = min(concurrency, cap) if cap is not None else concurrency
    bound = max(sum(latencies) / slots, max(latencies))
    if rate_per_minute is not None:
        starts = max(len(latencies) - burst, 0)
        bound = max(bound, starts * 60.0 / rate_per_minute + min(latencies))
    return bound


def fifo_makespan(
    latencies: Sequence[float],
    slots: int,
    *,
    rate_per_minute: float | None = None,
    burst: int = 1,
) -> float:
    """The makespan of an ideal scheduler with no overhead that starts items in order, each on the
    first slot free and no sooner than the rate allows (`burst` at once, then one per interval):
    what a perfect orchestrator that cannot know latencies ahead reaches."""
    interval = 0.0 if rate_per_minute is None else 60.0 / rate_per_minute
    free = [0.0] * slots
    for index, latency in enumerate(latencies):
        start = max(heapq.heappop(free), max(index - burst + 1, 0) * interval)
        heapq.heappush(free, start + latency)
    return max(free)


def fixed_batch_makespan(latencies: Sequence[float], size: int) -> float:
    """Batches of `size` started together, each waiting for its slowest image, with no overhead."""
    return sum(max(latencies[at : at + size]) for at in range(0, len(latencies), size))

"""The circuit breaker: pure state with the time passed in, then on a lane on the virtual clock
(an outage stops the starts, one probe goes through at growing intervals, an answer closes it)."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.breaker import Breaker
from orchestrator.lanes import Lane, LaneLimits
from orchestrator.testing.virtual_loop import START, virtual_time


def test_it_opens_after_failures_in_a_row_only() -> None:
    breaker = Breaker(after=3, first_s=1.0)
    assert breaker.failed(10.0, 9.0) is None
    assert breaker.failed(10.1, 9.0) is None
    assert not breaker.tripped
    assert breaker.failed(10.2, 9.0) == 1.0
    assert breaker.tripped and breaker.open_until == pytest.approx(11.2)


def test_an_answer_resets_the_run_of_failures() -> None:
    breaker = Breaker(after=2)
    breaker.failed(1.0, 0.0)
    assert breaker.answered() is False  # it was closed
    assert breaker.failed(2.0, 1.5) is None and not breaker.tripped


def test_attempts_under_way_when_it_opened_do_not_count_again() -> None:
    breaker = Breaker(after=1, first_s=2.0)
    assert breaker.failed(10.0, 9.0) == 2.0
    assert breaker.failed(10.5, 9.5) is None  # started before the cool-down ended
    assert breaker.open_until == pytest.approx(12.0)


def test_each_failed_probe_doubles_the_cool_down_up_to_the_most() -> None:
    breaker = Breaker(after=1, first_s=1.0, max_s=5.0)
    now = 0.0
    waits: list[float] = []
    wait = breaker.failed(now, now)
    while wait is not None and len(waits) < 5:
        waits.append(wait)
        now += wait  # the probe starts as the cool-down ends, and fails at once
        wait = breaker.failed(now, now)
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert breaker.answered() is True and not breaker.tripped and breaker.cooldown_s == 0.0


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Breaker(after=0)
    with pytest.raises(ValueError):
        Breaker(first_s=10.0, max_s=1.0)


def now() -> float:
    return round(asyncio.get_running_loop().time() - START, 6)


async def failing(lane: Lane, starts: list[float], *, ok: bool = False) -> None:
    """One attempt that takes a second and finds the provider down (or answers, with `ok`)."""
    async with lane.turn() as turn:
        starts.append(now())
        await asyncio.sleep(1.0)
        if ok:
            turn.succeeded()
        else:
            turn.unavailable()


@virtual_time
async def test_an_outage_stops_the_lane_then_probes_one_at_a_time() -> None:
    lane = Lane("k", LaneLimits(4, None), breaker=Breaker(after=4, first_s=1.0))
    starts: list[float] = []
    await asyncio.gather(*(failing(lane, starts) for _ in range(4)))  # 4 failures: open
    assert lane.breaker.tripped and lane.concurrency == 1
    assert "breaker open" in repr(lane)
    # three more attempts wait: one probe after 1 s (fails), the next after 2 s more
    later: list[float] = []
    await asyncio.gather(*(failing(lane, later) for _ in range(2)))
    assert starts == [0, 0, 0, 0] and later == [2, 5]  # opened at 1, +1 s; probe ends at 3, +2 s


@virtual_time
async def test_an_answer_closes_the_breaker_and_gives_the_slots_back() -> None:
    lane = Lane("k", LaneLimits(4, None), breaker=Breaker(after=2, first_s=1.0))
    starts: list[float] = []
    await asyncio.gather(*(failing(lane, starts) for _ in range(2)))
    await failing(lane, starts, ok=True)  # the probe gets an image
    assert not lane.breaker.tripped and lane.concurrency == 4
    again: list[float] = []
    await asyncio.gather(*(failing(lane, again, ok=True) for _ in range(4)))
    assert starts == [0, 0, 2] and again == [3, 3, 3, 3]


@virtual_time
async def test_a_429_is_an_answer_too() -> None:
    lane = Lane("k", LaneLimits(2, None), breaker=Breaker(after=1, first_s=10.0))
    async with lane.turn() as turn:
        turn.unavailable()
    assert lane.breaker.tripped
    async with lane.turn() as turn:  # the probe, after 10 s
        assert now() == 10
        turn.rate_limited(1.0)
    assert not lane.breaker.tripped and lane.concurrency == 2

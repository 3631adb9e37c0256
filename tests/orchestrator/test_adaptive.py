"""The adaptive concurrency limit (`concurrency: "auto"`): the pure controller, then a lane that
uses it, on `VirtualTimeLoop` (its clock jumps to the next timer, so times compare exactly)."""

from __future__ import annotations

import asyncio
import itertools
from typing import TypedDict, Unpack

import pytest

from orchestrator.adaptive import MAX_PATIENCE, AdaptiveLimit
from orchestrator.lanes import Lane, LaneLimits, Lanes, Turn
from orchestrator.testing.virtual_loop import START, virtual_time


def succeed(limit: AdaptiveLimit, times: int) -> int:
    for _ in range(times):
        limit.on_success()
    return limit.limit


def cut_at(limit: AdaptiveLimit, level: int) -> int:
    """A 429 of an attempt that started with `level` under way, after every cut so far."""
    return limit.on_rate_limited(cuts_at_start=limit.cuts, level=level)


# -- the controller ----------------------------------------------------------------------------


def test_slow_start_doubles_the_limit_every_round_of_successes() -> None:
    limit = AdaptiveLimit(64)
    assert limit.limit == 4 and limit.slow_start
    assert succeed(limit, 4) == 8  # one round at 4
    assert succeed(limit, 8) == 16  # one round at 8
    assert succeed(limit, 16) == 32


def test_a_429_halves_the_limit_once_per_overload() -> None:
    limit = AdaptiveLimit(64)
    succeed(limit, 4 + 8)
    assert limit.limit == 16
    cuts_before = limit.cuts
    assert limit.on_rate_limited(cuts_at_start=cuts_before, level=16) == 8
    assert limit.good == 15 and not limit.slow_start
    # the other attempts of the same overload started before the cut: no further cut
    for level in range(9, 17):
        assert limit.on_rate_limited(cuts_at_start=cuts_before, level=level) == 8
    assert limit.cuts == cuts_before + 1
    # an attempt that started after the cut and still got a 429: that is a new overload
    assert cut_at(limit, 8) == 4 and limit.good == 7


def test_after_a_429_successes_grow_the_limit_back_then_one_per_round() -> None:
    limit = AdaptiveLimit(32)
    succeed(limit, 4 + 1)  # slow start up to 9
    assert limit.limit == 9
    assert cut_at(limit, 9) == 4 and limit.good == 8  # 9 was too many; 8 was fine
    assert succeed(limit, 4) == 8  # recovery: back to the good level in about a round
    assert succeed(limit, 7) == 8  # at the good level, a whole round before trying 9
    assert succeed(limit, 1) == 9
    assert succeed(limit, 8) == 9  # trying 9: it must hold for a round of 9 first
    assert succeed(limit, 1) == 10 and limit.good == 9  # it held: additive increase from here
    assert succeed(limit, 10) == 11
    assert succeed(limit, 11) == 12


def test_each_failed_try_above_the_good_level_doubles_the_wait_before_the_next() -> None:
    limit = AdaptiveLimit(32)
    succeed(limit, 5)
    cut_at(limit, 9)  # the provider takes 8
    waits: list[int] = []
    for _ in range(7):
        assert limit.good is not None
        succeed(limit, limit.good - limit.limit)  # recover to the good level (8)
        before = 0
        while limit.limit == 8:
            limit.on_success()
            before += 1
        waits.append(before)
        cut_at(limit, 9)  # the try at 9 fails again
    assert waits == [8, 16, 32, 64, 128, 256, 256]  # rounds of 8, up to MAX_PATIENCE
    assert limit.patience == MAX_PATIENCE


def test_successes_while_slots_are_free_do_not_grow_the_limit() -> None:
    limit = AdaptiveLimit(32)
    for _ in range(100):
        limit.on_success(full=False)  # a limit that is not used has not been shown to work
    assert limit.limit == 4


def test_the_maximum_is_never_passed() -> None:
    limit = AdaptiveLimit(6)
    assert succeed(limit, 1000) == 6
    small = AdaptiveLimit(2)
    assert small.limit == 2 and succeed(small, 50) == 2
    assert limit.set_maximum(3) == 3 and succeed(limit, 50) == 3


def test_the_limit_never_goes_below_one() -> None:
    limit = AdaptiveLimit(8)
    for _ in range(10):
        cut_at(limit, limit.limit)
    assert limit.limit == 1 and limit.good == 1
    assert succeed(limit, 1) == 2  # a round at 1, then it tries 2


@pytest.mark.parametrize("maximum", [0, -1])
def test_a_maximum_below_one_is_refused(maximum: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AdaptiveLimit(maximum)


# -- an adaptive lane --------------------------------------------------------------------------


def now() -> float:
    return round(asyncio.get_running_loop().time() - START, 6)


class LaneOptions(TypedDict, total=False):
    """The keyword arguments of `Lane` these tests set."""

    max_cooldown_s: float
    open_every_s: float


def adaptive_lane(maximum: int = 16, **kw: Unpack[LaneOptions]) -> Lane:
    return Lane("scripted:s1:ab12", LaneLimits(maximum, None, adaptive=True), **kw)


async def attempt(lane: Lane, starts: list[float], outcome: asyncio.Future[str]) -> None:
    """One turn that ends as `outcome` says: `ok`, `429` or `timeout` (nothing to report)."""
    async with lane.turn() as turn:
        starts.append(now())
        result = await outcome
        if result == "ok":
            turn.succeeded()
        elif result == "429":
            turn.rate_limited(1.0)


async def started(starts: list[float], count: int) -> None:
    while len(starts) < count:
        await asyncio.sleep(0.01)


@virtual_time
async def test_an_adaptive_lane_grows_by_opening_one_slot_at_a_time() -> None:
    lane = adaptive_lane(open_every_s=0.5)
    assert lane.concurrency == 4
    loop = asyncio.get_running_loop()
    outcomes = [loop.create_future() for _ in range(12)]
    starts: list[float] = []
    tasks = [asyncio.create_task(attempt(lane, starts, outcome)) for outcome in outcomes]
    await started(starts, 4)
    assert starts == [0.0] * 4 and lane.waiting == 8
    await asyncio.sleep(2.0)  # images take 2 s, longer than `open_every_s`
    for outcome in outcomes[:4]:
        outcome.set_result("ok")  # one round at 4: the limit doubles to 8 ...
    await started(starts, 12)
    assert lane.adaptive is not None and lane.adaptive.limit == 8
    # ... but the new places open half a second apart (a 429 would stop them early)
    first = starts[4]
    assert starts[4:9] == [first] * 5  # 4 given back, 1 new
    assert starts[9:] == pytest.approx([first + 0.5, first + 1.0, first + 1.5])  # 3 more
    for outcome in outcomes[4:]:
        outcome.set_result("ok")
    await asyncio.gather(*tasks)


@virtual_time
async def test_slots_open_no_further_apart_than_the_quickest_answer() -> None:
    """A provider that answers in 0.1 s would answer a 429 as quickly: waiting the whole
    `open_every_s` between new slots would only slow the batch down."""
    lane = adaptive_lane(open_every_s=0.5)
    loop = asyncio.get_running_loop()
    outcomes = [loop.create_future() for _ in range(12)]
    starts: list[float] = []
    tasks = [asyncio.create_task(attempt(lane, starts, outcome)) for outcome in outcomes]
    await started(starts, 4)
    await asyncio.sleep(0.1)
    for outcome in outcomes[:4]:
        outcome.set_result("ok")
    await started(starts, 12)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts[8:])]
    assert len(gaps) == 3 and all(0.1 <= gap <= 0.12 for gap in gaps), gaps  # not 0.5
    for outcome in outcomes[4:]:
        outcome.set_result("ok")
    await asyncio.gather(*tasks)


@virtual_time
async def test_after_a_429_the_slots_come_back_to_the_level_that_held_without_pacing() -> None:
    """Growing past what is known opens one slot per `open_every_s`; coming back, after a cut,
    to a level that drew no 429 needs no such care: each success reopens a slot at once."""
    lane = adaptive_lane(open_every_s=10.0)
    learnt = lane.adaptive
    assert learnt is not None
    learnt.limit = 9  # as if grown to 9 earlier ...
    learnt.on_rate_limited(cuts_at_start=0, level=9)  # ... where a 429 came: 8 held
    assert (learnt.good, learnt.limit, lane.concurrency) == (8, 4, 4)
    loop = asyncio.get_running_loop()
    outcomes = [loop.create_future() for _ in range(12)]
    starts: list[float] = []
    tasks = [asyncio.create_task(attempt(lane, starts, outcome)) for outcome in outcomes]
    await started(starts, 4)
    for outcome in outcomes[:4]:
        outcome.set_result("ok")  # four successes: back to 8
    await started(starts, 12)
    assert learnt.limit == 8 and lane.concurrency == 8
    assert starts[4:] == [0.01] * 8  # the 4 freed slots and 4 reopened ones, none 10 s later
    for outcome in outcomes[4:]:
        outcome.set_result("ok")
    await asyncio.gather(*tasks)


@virtual_time
async def test_fewer_slots_after_a_429_never_stop_attempts_under_way() -> None:
    lane = adaptive_lane(open_every_s=0.0)
    loop = asyncio.get_running_loop()
    outcomes = [loop.create_future() for _ in range(12)]
    starts: list[float] = []
    tasks = [asyncio.create_task(attempt(lane, starts, outcome)) for outcome in outcomes[:8]]
    await started(starts, 4)
    for outcome in outcomes[:4]:
        outcome.set_result("ok")
    await started(starts, 8)
    assert lane.concurrency == 8 and lane.running == 4
    tasks += [asyncio.create_task(attempt(lane, starts, outcome)) for outcome in outcomes[8:]]
    await asyncio.sleep(0.01)
    assert lane.running == 8 and lane.waiting == 0  # grown to 8 (the 4 new ones: 4 more)
    outcomes[4].set_result("429")
    await asyncio.sleep(0.01)
    assert lane.concurrency == 4 and lane.running == 7  # halved; nobody else was stopped
    assert not any(task.done() for task in tasks[5:])
    for outcome in outcomes[5:8]:
        outcome.set_result("timeout")  # ended without an image or a 429: changes nothing
    await asyncio.sleep(2.0)  # past the 1 s cool-down
    assert lane.running == 4 and lane.waiting == 0 and lane.concurrency == 4
    for outcome in outcomes[8:]:
        if not outcome.done():
            outcome.set_result("ok")
    await asyncio.gather(*tasks)
    assert all(task.exception() is None for task in tasks)


@virtual_time
async def test_changed_returns_once_the_lane_has_another_limit() -> None:
    lane = adaptive_lane(open_every_s=0.0)
    assert await lane.changed(None) == 4  # not what was seen: at once
    waiting = asyncio.create_task(lane.changed(4))
    await asyncio.sleep(1.0)
    assert not waiting.done()
    outcome = asyncio.get_running_loop().create_future()
    turns = [asyncio.create_task(attempt(lane, [], outcome)) for _ in range(4)]
    await asyncio.sleep(0)
    outcome.set_result("ok")
    assert await waiting == 5  # the first success grew it
    await asyncio.gather(*turns)


@virtual_time
async def test_a_fixed_and_an_adaptive_job_share_an_adaptive_lane_under_the_fixed_maximum() -> None:
    lanes = Lanes()
    fixed = lanes.get("k", concurrency=6, rate_per_minute=None)
    assert fixed.adaptive is None and fixed.concurrency == 6
    shared = lanes.get("k", concurrency=32, rate_per_minute=None, adaptive=True)
    assert shared is fixed and shared.limits == LaneLimits(6, None, adaptive=True)
    assert shared.concurrency == 4 and shared.adaptive is not None
    lanes.release("k", concurrency=6, rate_per_minute=None)
    assert shared.limits == LaneLimits(32, None, adaptive=True)
    lanes.release("k", concurrency=32, rate_per_minute=None, adaptive=True)
    again = lanes.get("k", concurrency=6, rate_per_minute=None)
    assert again.adaptive is None and again.concurrency == 6
    assert "auto" not in repr(again)


def test_a_turn_says_how_many_were_under_way_when_it_started() -> None:
    lane = adaptive_lane()
    turn = Turn(lane, cuts=0, level=3, started=0.0)
    assert (turn.cuts, turn.level) == (0, 3)

"""Provider lanes: even pacing with no polling, fair and cancellation-safe waiters, the shared
429 cool-down, and one lane shared by every job on a provider.

Every test runs on `VirtualTimeLoop` (orchestrator.testing.virtual_loop), whose clock jumps to the
next timer whenever nothing else is ready, so an hour of pacing takes milliseconds and times
compare exactly. (The looptime plugin does the same, but once installed it leaks an event loop
from synchronous tests elsewhere in the suite under pytest-asyncio 1.5, which warnings-as-errors
turns into failures.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orchestrator.lanes import Lane, LaneLimits, Lanes
from orchestrator.pacer import Pacer
from orchestrator.testing.virtual_loop import START, VirtualTimeLoop, virtual_time

KEY = "openai:gpt-image-1:ab12"


def now() -> float:
    """Seconds of loop time since the test began."""
    return round(asyncio.get_running_loop().time() - START, 6)


def wake_ups() -> int:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    return loop.wake_ups


async def sleep_until(t: float) -> None:
    await asyncio.sleep(t - now())


def lane(concurrency: int = 4, rate: float | None = None, burst: int = 1, **kw: Any) -> Lane:
    return Lane(KEY, LaneLimits(concurrency, rate, burst), **kw)


async def paced(pacer: Pacer, starts: list[float]) -> None:
    await pacer.wait()
    starts.append(now())


async def attempt(lane: Lane, starts: list[float], seconds: float = 0.0) -> None:
    async with lane.turn():
        starts.append(now())
        await asyncio.sleep(seconds)


# -- the pacer ----------------------------------------------------------------------------------


@virtual_time
async def test_starts_are_evenly_spaced_after_a_burst() -> None:
    pacer = Pacer(12, burst=3)
    starts: list[float] = []
    await asyncio.gather(*(paced(pacer, starts) for _ in range(7)))
    assert starts == [0, 0, 0, 5, 10, 15, 20]


@virtual_time
async def test_an_idle_pacer_saves_up_no_more_than_its_burst() -> None:
    pacer = Pacer(60, burst=2)
    await pacer.wait()
    await sleep_until(100)
    starts: list[float] = []
    await asyncio.gather(*(paced(pacer, starts) for _ in range(4)))
    assert starts == [100, 100, 101, 102]


@virtual_time
async def test_no_rate_means_no_wait_and_no_timer() -> None:
    pacer = Pacer(None)
    for _ in range(1000):
        await pacer.wait()
    assert now() == 0
    assert wake_ups() == 0


@virtual_time
async def test_pacing_sets_one_timer_per_start_and_never_polls() -> None:
    pacer = Pacer(1200)
    starts: list[float] = []
    await asyncio.gather(*(paced(pacer, starts) for _ in range(100)))
    assert starts == pytest.approx([i * 0.05 for i in range(100)], abs=1e-5)
    # The first start is at once; the loop wakes once for each later one. A poller sleeping
    # 10 ms between checks (asyncio-throttle) would wake it five times per start here.
    assert wake_ups() == 99


@virtual_time
async def test_waiters_start_in_arrival_order() -> None:
    pacer = Pacer(60)
    order: list[str] = []

    async def waiter(name: str, arrive_at: float) -> None:
        await sleep_until(arrive_at)
        await pacer.wait()
        order.append(name)

    arrivals = [("a", 0.0), ("b", 0.1), ("c", 0.2), ("d", 0.3), ("late", 2.5)]
    await asyncio.gather(*(waiter(name, t) for name, t in reversed(arrivals)))
    assert order == ["a", "b", "c", "d", "late"]
    assert now() == 4  # a at 0, then one a second: "late" queues behind c and d, not before


@virtual_time
async def test_a_newcomer_never_overtakes_a_waiter_even_when_a_start_is_free() -> None:
    pacer = Pacer(12)
    await pacer.wait()
    order: list[str] = []

    async def waiter(name: str) -> None:
        await pacer.wait()
        order.append(name)

    queued = asyncio.create_task(waiter("queued"))
    await sleep_until(1)
    pacer.set_rate(60)  # a start is due at once now, but `queued` has not woken up yet
    await waiter("newcomer")
    await queued
    assert order == ["queued", "newcomer"]
    assert now() == 2


@virtual_time
async def test_a_cancelled_waiter_passes_its_start_to_the_next() -> None:
    pacer = Pacer(12)
    await pacer.wait()  # the start at 0
    starts: list[float] = []
    first = asyncio.create_task(paced(pacer, starts))  # due at 5
    second = asyncio.create_task(paced(pacer, starts))  # due at 10
    await sleep_until(1)
    first.cancel()
    await second
    assert starts == [5]  # not 10: the cancelled waiter's start went to the next one
    with pytest.raises(asyncio.CancelledError):
        await first
    assert pacer.waiting == 0


@virtual_time
async def test_a_start_handed_over_as_the_cancel_lands_goes_to_the_next() -> None:
    pacer = Pacer(12)
    await pacer.wait()
    starts: list[float] = []
    first = asyncio.create_task(paced(pacer, starts))
    second = asyncio.create_task(paced(pacer, starts))
    await sleep_until(1)
    handed_over: list[bool] = []

    def cancel_first() -> None:  # runs right after the pacer's timer, before `first` wakes up
        handed_over.append(pacer.waiting == 1)
        first.cancel()

    asyncio.get_running_loop().call_at(pacer.next_start, cancel_first)
    await second
    assert handed_over == [True]  # the race really happened: `first` had its start
    assert starts == [5]
    assert first.cancelled()


@virtual_time
async def test_cancelled_error_propagates_so_timeouts_work() -> None:
    pacer = Pacer(1)
    await pacer.wait()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(10):
            await pacer.wait()
    assert now() == 10
    assert pacer.waiting == 0


@virtual_time
async def test_a_hold_pushes_every_start_past_it_and_spends_the_burst() -> None:
    pacer = Pacer(12, burst=3)
    await pacer.wait()
    pacer.hold_until(asyncio.get_running_loop().time() + 20)
    pacer.hold_until(asyncio.get_running_loop().time() + 1)  # never shortens the hold
    starts: list[float] = []
    await asyncio.gather(*(paced(pacer, starts) for _ in range(4)))
    assert starts == [20, 25, 30, 35]


@virtual_time
async def test_a_hold_sends_away_only_those_who_asked() -> None:
    pacer = Pacer(12)
    await pacer.wait()
    leaving = asyncio.create_task(pacer.wait_unless_held())
    staying = asyncio.create_task(paced(pacer, []))
    await sleep_until(1)
    pacer.hold_until(asyncio.get_running_loop().time() + 9)
    assert await leaving is False
    assert now() == 1
    await staying
    assert now() == 10
    assert await pacer.wait_unless_held() is True


@virtual_time
async def test_a_slower_rate_applies_from_the_next_start() -> None:
    pacer = Pacer(60)
    starts: list[float] = []
    tasks = [asyncio.create_task(paced(pacer, starts)) for _ in range(3)]
    await sleep_until(0.5)
    pacer.set_rate(12)
    await asyncio.gather(*tasks)
    assert starts == [0, 5, 10]


def test_an_idle_pacer_moves_to_a_new_event_loop() -> None:
    pacer = Pacer(60)

    async def two_starts() -> None:
        await pacer.wait()
        await pacer.wait()  # a timer on this loop, a minute after the other loop's last start

    for _ in range(2):
        with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
            runner.run(two_starts())


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (float("nan"), 1), (10, 0)])
def test_nonsense_pacing_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        Pacer(rate, burst=burst)


def test_nonsense_lane_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        LaneLimits(0, 10)
    with pytest.raises(ValueError, match="max_cooldown_s"):
        lane(max_cooldown_s=0)


# -- one lane -----------------------------------------------------------------------------------


@virtual_time
async def test_a_cool_down_holds_new_turns_without_taking_slots() -> None:
    road = lane(concurrency=2)
    road.cool_down(10)
    starts: list[float] = []
    tasks = [asyncio.create_task(attempt(road, starts, seconds=3)) for _ in range(3)]
    await sleep_until(5)
    assert (road.in_use, road.running, road.waiting) == (0, 0, 3)
    assert road.cooldown_remaining() == 5
    await asyncio.gather(*tasks)
    assert starts == [10, 10, 13]


@virtual_time
async def test_a_cool_down_never_shortens_and_is_capped() -> None:
    road = lane(max_cooldown_s=60)
    road.cool_down(30)
    road.cool_down(5)
    assert road.cooldown_remaining() == 30
    road.cool_down(1e9)
    assert road.cooldown_remaining() == 60
    road.cool_down(float("nan"))
    assert road.cooldown_remaining() == 60


@virtual_time
async def test_a_cool_down_during_a_pacer_wait_queues_again() -> None:
    road = lane(concurrency=4, rate=12)
    starts: list[float] = []
    first = asyncio.create_task(attempt(road, starts, seconds=100))
    held = [asyncio.create_task(attempt(road, starts)) for _ in range(3)]
    await sleep_until(1)
    assert (road.in_use, road.waiting) == (4, 3)  # three hold slots while they wait to start
    road.cool_down(10)
    await sleep_until(1.5)
    assert (road.in_use, road.waiting) == (1, 3)  # ... and gave them back for the cool-down
    await asyncio.gather(*held)
    assert starts == [0, 11, 16, 21]  # one interval apart after it, not all at 11
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)


@virtual_time
async def test_a_cool_down_between_a_start_and_its_wake_up_gives_the_start_back() -> None:
    road = lane(concurrency=2, rate=12)
    starts: list[float] = []
    await attempt(road, starts)
    second = asyncio.create_task(attempt(road, starts))
    await sleep_until(1)
    handed_over: list[bool] = []

    def cool_down() -> None:  # runs right after the pacer's timer, before `second` wakes up
        handed_over.append("<Pacer 12/min, next start in 5.000s, 0 waiting>" in repr(road))
        road.cool_down(10)

    asyncio.get_running_loop().call_at(asyncio.get_running_loop().time() + 4, cool_down)
    await second
    assert handed_over == [True]  # the race really happened: `second` had its start
    assert starts == [0, 15]


@virtual_time
async def test_concurrency_limits_turns_and_hands_slots_over_in_order() -> None:
    road = lane(concurrency=2)
    starts: list[float] = []
    await asyncio.gather(*(attempt(road, starts, seconds=10) for _ in range(5)))
    assert starts == [0, 0, 10, 10, 20]
    assert (road.in_use, road.running, road.waiting) == (0, 0, 0)


@virtual_time
async def test_turns_cancelled_in_each_queue_leave_no_trace() -> None:
    road = lane(concurrency=2, rate=12)
    road.cool_down(5)
    in_cool_down = asyncio.create_task(attempt(road, []))
    await sleep_until(1)
    assert (road.in_use, road.waiting) == (0, 1)
    in_cool_down.cancel()
    await sleep_until(6)
    starts: list[float] = []
    holder = asyncio.create_task(attempt(road, starts, seconds=100))  # at 6; the next start is 11
    for_a_start = asyncio.create_task(attempt(road, starts))  # takes the other slot
    for_a_slot = asyncio.create_task(attempt(road, starts))  # finds none
    await sleep_until(7)
    assert (road.in_use, road.running, road.waiting) == (2, 1, 2)
    for_a_start.cancel()
    for_a_slot.cancel()
    await asyncio.gather(in_cool_down, for_a_start, for_a_slot, return_exceptions=True)
    assert all(task.cancelled() for task in (in_cool_down, for_a_start, for_a_slot))
    assert (road.in_use, road.running, road.waiting) == (1, 1, 0)
    await attempt(road, starts)
    assert starts == [6, 11]  # the cancelled waiter took no start: 11, not 16
    holder.cancel()
    await asyncio.gather(holder, return_exceptions=True)
    assert road.in_use == 0


@virtual_time
async def test_a_slot_handed_over_as_the_cancel_lands_goes_to_the_next() -> None:
    road = lane(concurrency=1)
    starts: list[float] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with road.turn():
            await release.wait()
        unlucky.cancel()  # it has just been handed the slot and has not woken up yet

    first = asyncio.create_task(holder())
    await asyncio.sleep(1)
    unlucky = asyncio.create_task(attempt(road, starts))
    lucky = asyncio.create_task(attempt(road, starts))
    await asyncio.sleep(1)
    release.set()
    await asyncio.gather(first, lucky)
    assert unlucky.cancelled()
    assert starts == [2]
    assert road.in_use == 0


@virtual_time
async def test_an_error_in_the_turn_gives_the_slot_back() -> None:
    road = lane(concurrency=1)
    with pytest.raises(RuntimeError):
        async with road.turn():
            raise RuntimeError("provider exploded")
    assert road.in_use == 0
    async with road.turn():
        assert road.running == 1


@virtual_time
async def test_repr_shows_live_state() -> None:
    road = lane(concurrency=2, rate=12)
    running = asyncio.create_task(attempt(road, [], seconds=100))
    queued = [asyncio.create_task(attempt(road, [])) for _ in range(2)]
    await sleep_until(1)
    assert repr(road) == (
        "<Lane 'openai:gpt-image-1:ab12': 2/2 slots in use, 1 running, 2 waiting;"
        " <Pacer 12/min, next start in 4.000s, 1 waiting>>"
    )
    road.cool_down(30)
    await sleep_until(2)
    assert repr(road) == (
        "<Lane 'openai:gpt-image-1:ab12': 1/2 slots in use, 1 running, 2 waiting,"
        " cooling down 29.000s; <Pacer 12/min, next start in 29.000s, 0 waiting>>"
    )
    assert repr(Pacer(None, burst=3)) == "<Pacer unlimited burst 3, next start now, 0 waiting>"
    for task in [running, *queued]:
        task.cancel()
    await asyncio.gather(running, *queued, return_exceptions=True)


def test_repr_works_outside_a_loop() -> None:
    assert repr(Pacer(30)) == "<Pacer 30/min, next start now, 0 waiting>"
    assert "0/4 slots in use" in repr(lane())


# -- lanes shared by jobs -----------------------------------------------------------------------


async def job(lanes: Lanes, starts: list[float], items: int, **kw: Any) -> None:
    """One job's items, each an attempt in the lane the job asks for."""
    road = lanes.get(KEY, concurrency=4, rate_per_minute=12)
    await asyncio.gather(*(attempt(road, starts, **kw) for _ in range(items)))


@virtual_time
async def test_two_jobs_on_one_provider_together_keep_its_rate() -> None:
    lanes = Lanes()
    starts: list[float] = []
    await asyncio.gather(job(lanes, starts, 6), job(lanes, starts, 6))
    assert starts == [5.0 * i for i in range(12)]  # 12/min in all, not 24/min
    assert len(lanes) == 1
    assert wake_ups() == 11  # once per start after the first: no polling


@virtual_time
async def test_a_429_in_one_job_cools_the_other_down() -> None:
    lanes = Lanes()
    key = "gemini:imagen:cd34"
    first = lanes.get(key, concurrency=2, rate_per_minute=12)
    second = lanes.get(key, concurrency=2, rate_per_minute=12)
    other_starts: list[float] = []
    async with first.turn():
        later = asyncio.create_task(attempt(second, other_starts))
        await asyncio.sleep(1)
        first.cool_down(30)  # the first job's attempt got a 429 with Retry-After: 30
    await later
    assert other_starts == [31]


@virtual_time
async def test_jobs_share_the_lanes_concurrency() -> None:
    lanes = Lanes()
    key = "openai:dall-e-3:ef56"
    running: list[int] = []

    async def job_of(items: int) -> None:
        road = lanes.get(key, concurrency=2, rate_per_minute=None)

        async def one() -> None:
            async with road.turn():
                running.append(road.running)
                await asyncio.sleep(10)

        await asyncio.gather(*(one() for _ in range(items)))

    await asyncio.gather(job_of(3), job_of(3))
    assert max(running) == 2
    assert now() == 30


@virtual_time
async def test_lanes_return_the_same_lane_tightened() -> None:
    lanes = Lanes(max_cooldown_s=120)
    first = lanes.get("k", concurrency=4, rate_per_minute=60)
    asked = LaneLimits(concurrency=2, rate_per_minute=120)
    second = lanes.get("k", concurrency=asked.concurrency, rate_per_minute=asked.rate_per_minute)
    assert second is first
    assert first.limits == LaneLimits(concurrency=2, rate_per_minute=60)
    assert first.limits != asked  # how a caller tells that the lane holds it tighter
    assert lanes.get("other", concurrency=4, rate_per_minute=None) is not first
    assert lanes.get("k", concurrency=9, rate_per_minute=None).limits == first.limits
    assert first.max_cooldown_s == 120
    assert LaneLimits(3, None, 2).tighter(LaneLimits(5, 30, 1)) == LaneLimits(3, 30, 1)


@virtual_time
async def test_tightening_a_busy_lane_applies_to_the_next_turns() -> None:
    road = lane(concurrency=3)
    starts: list[float] = []
    busy = [asyncio.create_task(attempt(road, starts, seconds=s)) for s in (5, 10)]
    await asyncio.sleep(1)
    assert road.tighten(LaneLimits(concurrency=1, rate_per_minute=None)) is True
    assert road.tighten(LaneLimits(concurrency=1, rate_per_minute=None)) is False
    await attempt(road, starts)
    assert starts == [0, 0, 10]  # not 1 (a free slot of three), nor 5 (one of two left)
    await asyncio.gather(*busy)


def test_a_lane_goes_back_to_the_limits_of_the_jobs_still_using_it() -> None:
    lanes = Lanes()
    strict = lanes.get("openai", concurrency=1, rate_per_minute=6)
    loose = lanes.get("openai", concurrency=8, rate_per_minute=None)
    assert strict is loose and loose.limits == LaneLimits(1, 6)
    lanes.release("openai", concurrency=1, rate_per_minute=6)  # the strict job is done
    assert loose.limits == LaneLimits(8, None), "one strict job does not slow later ones"
    lanes.release("openai", concurrency=8, rate_per_minute=None)
    again = lanes.get("openai", concurrency=4, rate_per_minute=120)
    assert again is loose and again.limits == LaneLimits(4, 120), "a new user sets them afresh"

"""The rate gate: evenly spaced starts and the shared cool-down after a 429 (and the fake clock)."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from orchestrator.clock import FakeClock
from orchestrator.limits import RateGate


def _finishes_without_waiting(gate: RateGate) -> bool:
    coro = gate.wait_turn()
    try:
        coro.send(None)
    except StopIteration:
        return True
    coro.close()
    return False


# -- the fake clock -----------------------------------------------------------------------------


async def test_fake_clock_moves_only_when_asked() -> None:
    clock = FakeClock(start=100.0, wall_start=5000.0)
    assert (clock.monotonic(), clock.time()) == (100.0, 5000.0)
    await clock.sleep(2.5)
    clock.advance(1.0)
    assert (clock.monotonic(), clock.time()) == (103.5, 5003.5)
    assert clock.sleeps == [2.5]


async def test_fake_clock_concurrent_sleepers_share_the_wait() -> None:
    clock = FakeClock(start=0.0)
    await asyncio.gather(clock.sleep(3.0), clock.sleep(5.0))
    assert clock.monotonic() == 5.0
    assert sorted(clock.sleeps) == [3.0, 5.0]


# -- no rate, no cool-down ------------------------------------------------------------------------


def test_no_rate_and_no_cool_down_means_no_wait() -> None:
    clock = FakeClock()
    gate = RateGate(None, clock)
    assert all(_finishes_without_waiting(gate) for _ in range(100))
    assert clock.sleeps == []


def test_a_cool_down_does_make_it_wait() -> None:
    gate = RateGate(None, FakeClock())
    gate.cool_down(1.0)
    assert not _finishes_without_waiting(gate)


@pytest.mark.parametrize("rate", [0.0, -5.0])
def test_nonsense_rate_is_refused(rate: float) -> None:
    with pytest.raises(ValueError):
        RateGate(rate, FakeClock())


# -- cool-down ----------------------------------------------------------------------------------


async def test_every_waiter_waits_out_the_cool_down() -> None:
    clock = FakeClock(start=0.0)
    gate = RateGate(None, clock)
    clock.advance(1.0)
    gate.cool_down(10.0)
    clock.advance(4.0)
    await asyncio.gather(gate.wait_turn(), gate.wait_turn())
    assert clock.sleeps == [6.0, 6.0]
    assert clock.monotonic() == 11.0
    assert gate.cooldown_remaining() == 0.0


async def test_cool_down_with_a_rate_set_also_waits() -> None:
    clock = FakeClock(start=0.0)
    gate = RateGate(60_000, clock)
    gate.cool_down(30.0)
    await gate.wait_turn()
    assert clock.sleeps == [30.0]


def test_cool_down_never_shortens_a_longer_one() -> None:
    clock = FakeClock()
    gate = RateGate(None, clock)
    gate.cool_down(30.0)
    gate.cool_down(5.0)
    assert gate.cooldown_remaining() == 30.0
    clock.advance(10.0)
    gate.cool_down(25.0)
    assert gate.cooldown_remaining() == 25.0
    gate.cool_down(5.0)
    assert gate.cooldown_remaining() == 25.0


def test_cooldown_remaining_counts_down_to_zero() -> None:
    clock = FakeClock()
    gate = RateGate(None, clock)
    assert gate.cooldown_remaining() == 0.0
    gate.cool_down(3.0)
    clock.advance(1.0)
    assert gate.cooldown_remaining() == 2.0
    clock.advance(5.0)
    assert gate.cooldown_remaining() == 0.0


async def test_a_429_during_the_wait_for_a_slot_is_waited_out() -> None:
    clock = FakeClock(start=0.0)
    gate = RateGate(600, clock)  # one start per 0.1 s
    await gate.wait_turn()  # takes the first slot at once
    second = asyncio.create_task(gate.wait_turn())
    await asyncio.sleep(0.02)  # the second waiter is now queued for the next slot
    assert not second.done()
    gate.cool_down(20.0)
    started = time.monotonic()
    await second
    assert clock.sleeps == [20.0]
    # it gave up the slot it got during the cool-down and queued for a fresh one
    assert time.monotonic() - started >= 0.15


# -- rate ---------------------------------------------------------------------------------------


async def test_starts_are_evenly_spaced() -> None:
    gate = RateGate(600, FakeClock())  # 0.1 s apart, no burst
    starts: list[float] = []

    async def start() -> None:
        await gate.wait_turn()
        starts.append(time.monotonic())

    await asyncio.gather(*(start() for _ in range(4)))
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(gap >= 0.09 for gap in gaps), gaps
    assert starts[-1] - starts[0] >= 0.28


async def test_cancelling_a_waiter_raises_cancelled() -> None:
    gate = RateGate(60, FakeClock())  # one start per second
    await gate.wait_turn()
    waiter = asyncio.create_task(gate.wait_turn())
    await asyncio.sleep(0.02)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert waiter.cancelled()

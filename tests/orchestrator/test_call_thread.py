"""The journal's call threads as the event loop awaits them: the answers of a batch in one trip,
a call given up before it ran left out, and the work in flight seen by test clocks."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future
from typing import Any

import pytest

from orchestrator.call_thread import CallThread


def _held(thread: CallThread) -> tuple[threading.Event, Future[None]]:
    """Keep `thread` busy until the returned event is set, so the calls queued meanwhile form
    one batch."""
    started, gate = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        gate.wait()

    holding = thread.submit(hold)
    assert started.wait(timeout=10)
    return gate, holding


async def test_the_calls_of_a_batch_are_answered_in_one_trip_to_the_loop() -> None:
    loop = asyncio.get_running_loop()
    thread = CallThread(name="test-calls")
    trips: list[object] = []
    real = loop.call_soon_threadsafe

    def counted(callback: object, *args: object, **kwargs: object) -> object:
        trips.append(callback)
        return real(callback, *args, **kwargs)  # type: ignore[arg-type]

    loop.call_soon_threadsafe = counted  # type: ignore[method-assign,assignment]
    try:
        gate, holding = _held(thread)
        calls = [loop.run_in_executor(thread.on_loop(loop), pow, n, 2) for n in range(5)]
        gate.set()
        assert await asyncio.gather(*calls) == [0, 1, 4, 9, 16]
        holding.result(timeout=10)
    finally:
        del loop.call_soon_threadsafe
        thread.shutdown()
    assert len(trips) == 1, trips


async def test_an_error_reaches_its_own_caller_and_the_others_get_their_results() -> None:
    loop = asyncio.get_running_loop()
    thread = CallThread(name="test-calls")
    gate, _ = _held(thread)
    calls = [
        loop.run_in_executor(thread.on_loop(loop), int, "1"),
        loop.run_in_executor(thread.on_loop(loop), int, "x"),
        loop.run_in_executor(thread.on_loop(loop), int, "3"),
    ]
    gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    thread.shutdown()
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], ValueError)


async def test_a_call_whose_caller_gave_up_before_it_ran_is_not_run() -> None:
    loop = asyncio.get_running_loop()
    thread = CallThread(name="test-calls")
    ran: list[str] = []
    gate, _ = _held(thread)
    given_up = loop.run_in_executor(thread.on_loop(loop), ran.append, "given up")
    later = loop.run_in_executor(thread.on_loop(loop), ran.append, "later")
    given_up.cancel()
    gate.set()
    await later
    thread.shutdown()
    assert ran == ["later"]


@pytest.mark.looptime
async def test_a_virtual_clock_does_not_jump_while_a_call_is_in_flight() -> None:
    """looptime moves its clock to the next timer when the loop has nothing to wait for, unless
    a `run_in_executor` future is pending: the thread's answer must be that future itself."""
    loop = asyncio.get_running_loop()
    thread = CallThread(name="test-calls")
    timer = asyncio.create_task(asyncio.sleep(1000))
    began = loop.time()
    await loop.run_in_executor(thread.on_loop(loop), time.sleep, 0.3)
    thread.shutdown()
    assert loop.time() - began < 100, "the clock jumped to the timer while the call ran"
    timer.cancel()


async def test_the_calls_of_one_turn_of_the_loop_reach_the_thread_together_at_its_end() -> None:
    """Waking a waiting thread costs the loop about as much as a call: the calls one turn makes
    are sent when it ends, in one batch, not one wake-up each."""
    loop = asyncio.get_running_loop()
    batches: list[int] = []

    class Counting(CallThread):
        def _run(self, batch: list[Any]) -> list[Any]:
            batches.append(len(batch))
            return super()._run(batch)

    thread = Counting(name="test-calls")
    ran: list[int] = []
    calls = [loop.run_in_executor(thread.on_loop(loop), ran.append, n) for n in range(4)]
    time.sleep(0.2)  # noqa: ASYNC251  # the turn goes on: nothing is sent yet
    assert ran == []
    await asyncio.gather(*calls)
    assert ran == [0, 1, 2, 3] and batches == [4]
    thread.shutdown()


async def test_a_call_made_after_shutdown_is_refused_not_left_waiting() -> None:
    loop = asyncio.get_running_loop()
    thread = CallThread(name="test-calls")
    thread.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        await loop.run_in_executor(thread.on_loop(loop), int, "1")
    with pytest.raises(RuntimeError, match="after shutdown"):
        thread.submit(int, "1")

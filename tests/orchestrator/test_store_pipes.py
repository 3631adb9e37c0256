"""The store workers' channel: calls to worker processes through pipes the event loop reads."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from orchestrator.store_pipes import QUEUED_BYTES, SEND_ON_LOOP, PipeWorkers, WorkerDied
from orchestrator.workers import start_serving_processes


@pytest.fixture
async def one_worker() -> AsyncIterator[PipeWorkers]:
    served = await asyncio.to_thread(start_serving_processes, 1)
    assert served is not None
    workers = PipeWorkers(served)
    yield workers
    workers.close()


async def test_a_call_runs_in_the_worker_and_what_it_raises_is_raised_here(
    one_worker: PipeWorkers,
) -> None:
    (pid,) = one_worker.pids
    assert await one_worker.call(os.getpid) == pid != os.getpid()
    with pytest.raises(ValueError, match="invalid literal"):
        await one_worker.call(int, "seven")
    assert await one_worker.call(int, "7") == 7  # the worker goes on after an error


async def test_a_large_call_reaches_the_worker_whole(one_worker: PipeWorkers) -> None:
    data = os.urandom(SEND_ON_LOOP * 4)  # written by a thread, not the loop
    assert await one_worker.call(bytes.hex, data) == data.hex()


async def test_calls_wait_their_turn_and_cancelled_ones_give_the_worker_back(
    one_worker: PipeWorkers,
) -> None:
    busy = asyncio.create_task(one_worker.call(time.sleep, 0.3))
    waiting = asyncio.create_task(one_worker.call(os.getpid))
    then = asyncio.create_task(one_worker.call(int, "3"))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # one worker: its turn comes after the sleep
    waiting.cancel()
    busy.cancel()  # cancelled while the worker sleeps: the sleep ends there all the same
    async with asyncio.timeout(10):
        assert await then == 3  # the worker came back, past the cancelled turn
        assert await one_worker.call(os.getpid) == one_worker.pids[0]
    assert waiting.cancelled() and busy.cancelled()


def _sleep_then_now(seconds: float) -> float:
    time.sleep(seconds)
    return time.monotonic()


def _started_at(data: bytes) -> float:
    return time.monotonic()


async def test_a_worker_starts_its_next_call_without_waiting_for_the_loop_to_read_an_answer(
    one_worker: PipeWorkers,
) -> None:
    """A busy loop reads an answer late: the worker, given its next call already, starts it as
    soon as it has answered (time.monotonic is the machine's, in both processes)."""
    first = asyncio.create_task(one_worker.call(_sleep_then_now, 0.2))
    second = asyncio.create_task(one_worker.call(time.monotonic))
    await asyncio.sleep(0.05)  # both sent: the second waits in the worker's pipe
    time.sleep(1.0)  # noqa: ASYNC251  # the loop busy while the worker answers the first
    async with asyncio.timeout(10):
        ended, started = await first, await second
    assert 0 <= started - ended < 0.5


async def test_a_large_call_waits_for_an_idle_worker_and_has_it_to_itself(
    one_worker: PipeWorkers,
) -> None:
    """Two small calls fit in a pipe's buffer, so writing one never waits for the worker; a
    large one could, so it goes to an idle worker only, and nothing is queued behind it."""
    small = asyncio.create_task(one_worker.call(_sleep_then_now, 0.2))
    large = asyncio.create_task(one_worker.call(_started_at, os.urandom(2 * QUEUED_BYTES)))
    after = asyncio.create_task(one_worker.call(time.monotonic))
    await asyncio.sleep(0.05)
    time.sleep(0.6)  # noqa: ASYNC251  # the loop busy: the small call's answer waits unread
    loop_free = time.monotonic()
    async with asyncio.timeout(10):
        assert await small < loop_free
        assert await large >= loop_free  # sent once the loop read the small call's answer
        assert await after >= await large


async def test_a_large_call_cancelled_before_it_is_sent_leaves_the_worker_answering_in_order(
    one_worker: PipeWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker answers its calls in order, one answer per call sent: a call cancelled while
    its thread had not yet sent it is sent all the same (its answer dropped), or the next
    call's answer would be taken for it."""
    real_to_thread = asyncio.to_thread

    async def slow_to_start(*args: Any) -> Any:
        await asyncio.sleep(0.2)  # the thread has not begun when the cancel lands
        return await real_to_thread(*args)

    monkeypatch.setattr(asyncio, "to_thread", slow_to_start)
    large = asyncio.create_task(one_worker.call(len, os.urandom(SEND_ON_LOOP * 2)))
    await asyncio.sleep(0.05)
    large.cancel()
    async with asyncio.timeout(10):
        assert await one_worker.call(int, "5") == 5
        assert await one_worker.call(int, "6") == 6
    assert large.cancelled()


async def test_a_worker_that_dies_fails_every_call_it_was_given(one_worker: PipeWorkers) -> None:
    calls = [asyncio.create_task(one_worker.call(time.sleep, 30)) for _ in range(2)]
    await asyncio.sleep(0.1)
    os.kill(one_worker.pids[0], signal.SIGKILL)
    async with asyncio.timeout(10):
        for call in calls:
            with pytest.raises(WorkerDied):
                await call


async def test_a_worker_that_dies_breaks_the_pool(one_worker: PipeWorkers) -> None:
    sleeping = asyncio.create_task(one_worker.call(time.sleep, 30))
    await asyncio.sleep(0.1)
    os.kill(one_worker.pids[0], signal.SIGKILL)
    async with asyncio.timeout(10):
        with pytest.raises(WorkerDied):
            await sleeping
    assert one_worker.broken
    with pytest.raises(WorkerDied):
        await one_worker.call(os.getpid)


async def test_the_workers_answer_only_the_event_loop_that_called_first(
    one_worker: PipeWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await one_worker.call(int, "1") == 1
    with pytest.raises(WorkerDied, match="another event loop"):
        await asyncio.to_thread(asyncio.run, one_worker.call(int, "2"))
    assert await one_worker.call(int, "3") == 3
    waiting = asyncio.create_task(one_worker.call(time.sleep, 5))
    await asyncio.sleep(0.05)
    loop, removed_by = asyncio.get_running_loop(), []
    remove_reader = loop.remove_reader

    def removed(fd: Any) -> bool:
        removed_by.append(threading.current_thread())
        return remove_reader(fd)

    monkeypatch.setattr(loop, "remove_reader", removed)
    await asyncio.to_thread(one_worker.close)  # from another thread: done on this loop
    async with asyncio.timeout(5):
        with pytest.raises(WorkerDied):
            await waiting
    assert removed_by == [threading.current_thread()]


class _Unreadable(Exception):
    """An error that pickles but cannot be unpickled: its class needs two arguments."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} {second}")


def _raise_unreadable() -> None:
    raise _Unreadable("one", "two")


async def test_an_answer_that_cannot_be_read_fails_its_call_and_not_the_next(
    one_worker: PipeWorkers,
) -> None:
    """Before, the loop's reader raised, and the call waited for its answer for ever."""
    async with asyncio.timeout(10):
        with pytest.raises(WorkerDied, match="cannot be read"):
            await one_worker.call(_raise_unreadable)
        assert await one_worker.call(int, "4") == 4

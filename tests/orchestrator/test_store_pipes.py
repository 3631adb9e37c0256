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

from orchestrator.store_pipes import SEND_ON_LOOP, PipeWorkers, WorkerDied
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

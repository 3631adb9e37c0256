"""The store workers' channel: worker processes the event loop talks to through pipes.

A `ProcessPoolExecutor` hands each call to a feeder thread and each answer to a manager thread,
which wakes the loop: four hand-offs between threads per image, each one a trip through the
GIL. Here the loop writes a call to a free worker's pipe and reads the answer when that pipe is
readable. Eight paired runs of 1,000 small images: 2.21 ms per image against 2.41 (see
`benchmarks/RESULTS.md`).

A worker takes one call at a time (`worker_side.serve`); calls wait their turn, in order, for
a free one. When a worker dies the pool is broken: each call in it raises `WorkerDied`, and its
owner starts another for the next call, as with a broken process pool.
"""

from __future__ import annotations

import asyncio
import pickle
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from .workers import Served, WorkerPool, start_serving_processes

__all__ = ["PipeWorkers", "WorkerDied", "pipe_pool"]

SEND_ON_LOOP = 256 * 1024
"""A call up to this size is written to its pipe by the loop; a larger one (a large image) by a
thread, so that the loop does not wait while the worker reads it."""

T = TypeVar("T")


class WorkerDied(Exception):
    """A worker process of the pool died (killed, out of memory): what it was doing is lost."""


class _Worker:
    def __init__(self, served: Served) -> None:
        self.process, self.pipe = served
        self.answer: asyncio.Future[Any] | None = None


class PipeWorkers:
    """Worker processes that `serve`, used from one event loop (the first that calls)."""

    def __init__(self, served: list[Served]) -> None:
        self._workers = [_Worker(one) for one in served]
        self._free: deque[_Worker] = deque(self._workers)
        self._turns: deque[asyncio.Future[_Worker]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.broken = False

    @property
    def pids(self) -> list[int]:
        return [worker.process.pid or 0 for worker in self._workers]

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a worker process: what it returns, or raises there; `WorkerDied`
        if the worker died first (or the pool broke). Cancelled, the call still ends there."""
        loop = self._attach()
        payload = pickle.dumps((function, args), pickle.HIGHEST_PROTOCOL)
        worker = await self._turn(loop)
        answer: asyncio.Future[T] = loop.create_future()
        worker.answer = answer
        try:
            if len(payload) <= SEND_ON_LOOP:
                worker.pipe.send_bytes(payload)
            else:
                await asyncio.to_thread(worker.pipe.send_bytes, payload)
            return await answer
        except OSError:  # the pipe broke as the call was written: the worker is gone
            self.close()
            raise WorkerDied("a store worker died") from None
        except asyncio.CancelledError:
            answer.cancel()  # its answer, when it comes, frees the worker
            raise

    def _attach(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self.broken:
            raise WorkerDied("a store worker died")
        if self._loop is None:
            self._loop = loop
            for worker in self._workers:
                loop.add_reader(worker.pipe.fileno(), self._answered, worker)
        elif self._loop is not loop:  # their pipes are read by the loop that came first
            raise WorkerDied("the store workers answer another event loop")
        return loop

    async def _turn(self, loop: asyncio.AbstractEventLoop) -> _Worker:
        """A free worker, once the calls before this one have theirs."""
        if self._free and not self._turns:
            return self._free.popleft()
        turn: asyncio.Future[_Worker] = loop.create_future()
        self._turns.append(turn)
        try:
            return await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed a worker as it was cancelled
                self._give(turn.result())
            raise

    def _give(self, worker: _Worker) -> None:
        """The next waiting call's worker now, or a free one."""
        while self._turns:
            turn = self._turns.popleft()
            if not turn.done():
                turn.set_result(worker)
                return
        self._free.append(worker)

    def _answered(self, worker: _Worker) -> None:
        """The loop's reader: `worker`'s answer has come, or its pipe closed (it died)."""
        try:
            message = worker.pipe.recv_bytes()
        except (EOFError, OSError):
            self.close()
            return
        try:
            ok, value = pickle.loads(message)
        except Exception as error:  # an answer this process cannot read: the call is lost
            ok, value = False, WorkerDied(f"a store worker's answer cannot be read ({error!r})")
        answer, worker.answer = worker.answer, None
        if answer is not None and not answer.done():
            if ok:
                answer.set_result(value)
            else:
                answer.set_exception(value)
        self._give(worker)

    def close(self) -> None:
        """Stop reading the pipes and close them: each worker ends its call, then leaves. A
        call still waiting raises `WorkerDied`. From another thread than the loop's, that is
        done on the loop's."""
        if self.broken:
            return
        self.broken = True
        loop = self._loop
        if loop is not None and loop.is_running() and not _on(loop):
            loop.call_soon_threadsafe(self._shut)
        else:
            self._shut()

    def _shut(self) -> None:
        loop = self._loop
        for worker in self._workers:
            if loop is not None and not loop.is_closed():
                loop.remove_reader(worker.pipe.fileno())
            worker.pipe.close()
            if worker.answer is not None and not worker.answer.done():
                worker.answer.set_exception(WorkerDied("a store worker died"))
        while self._turns:
            turn = self._turns.popleft()
            if not turn.done():
                turn.set_exception(WorkerDied("the store workers stopped"))


def _on(loop: asyncio.AbstractEventLoop) -> bool:
    """This thread runs `loop`."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def pipe_pool(workers: int, *, processes: bool = True) -> WorkerPool[PipeWorkers]:
    """A `WorkerPool` of `PipeWorkers`."""
    return WorkerPool(workers, _start, PipeWorkers.close, processes=processes)


def _start(workers: int) -> PipeWorkers | None:
    served = start_serving_processes(workers)
    return PipeWorkers(served) if served is not None else None

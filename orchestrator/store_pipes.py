"""The store workers' channel: worker processes the event loop talks to through pipes.

A `ProcessPoolExecutor` hands each call to a feeder thread and each answer to a manager thread,
which wakes the loop: four hand-offs between threads per image, each one a trip through the
GIL. Here the loop writes a call to a free worker's pipe and reads the answer when that pipe is
readable. Eight paired runs of 1,000 small images: 2.21 ms per image against 2.41 (see
`benchmarks/RESULTS.md`).

A worker does one call at a time (`worker_side.serve`) and is given up to `QUEUED_CALLS` at
once, so that it goes on to its next call as soon as it has answered one; calls wait their
turn, in order, for a worker that can take them. When a worker dies the pool is broken: each
call in it raises `WorkerDied`, and its owner starts another for the next call, as with a
broken process pool.
"""

from __future__ import annotations

import asyncio
import pickle
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar, cast

from .workers import Served, WorkerPool, start_serving_processes

__all__ = ["PipeWorkers", "WorkerDied", "pipe_pool"]

QUEUED_CALLS = 2
"""Calls a worker is given at once: the next waits in its pipe while it does one, so it starts
as soon as it has answered, not once the loop has read that answer (the loop, busy, took a
millisecond or two, and the workers waited for it)."""
QUEUED_BYTES = 16 * 1024
"""Only calls up to this size are given to a worker that has one already: two of them fit in a
pipe's buffer (64 KB), so writing one never waits for the worker to read. A larger call (a
large image) waits for an idle worker, and is the only one it is given."""
SEND_ON_LOOP = 256 * 1024
"""A call up to this size is written to its pipe by the loop; a larger one (a large image) by a
thread, so that the loop does not wait while the worker reads it."""

T = TypeVar("T")
_Taken = tuple["_Worker", "asyncio.Future[Any]"]


class WorkerDied(Exception):
    """A worker process of the pool died (killed, out of memory): what it was doing is lost."""


class _Worker:
    def __init__(self, served: Served) -> None:
        self.process, self.pipe = served
        self.answers: deque[asyncio.Future[Any]] = deque()
        """One per call given to this worker and not answered yet, oldest first (a worker
        answers in order)."""
        self.large = False
        """A large call is among them: no other call goes to this worker until it is answered."""

    def can_take(self, large: bool) -> bool:
        if large or self.large:
            return not self.answers
        return len(self.answers) < QUEUED_CALLS


class PipeWorkers:
    """Worker processes that `serve`, used from one event loop (the first that calls)."""

    def __init__(self, served: list[Served]) -> None:
        self._workers = [_Worker(one) for one in served]
        self._turns: deque[tuple[asyncio.Future[_Taken], bool]] = deque()
        """Calls waiting for a worker, in order, each with whether it is large."""
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
        worker, answer = await self._turn(loop, len(payload) > QUEUED_BYTES)
        try:
            if len(payload) <= SEND_ON_LOOP:
                worker.pipe.send_bytes(payload)
            else:  # sent whole even if this call is cancelled: its answer then comes, dropped
                sending = asyncio.ensure_future(asyncio.to_thread(worker.pipe.send_bytes, payload))
                sending.add_done_callback(_looked_at)
                await asyncio.shield(sending)
            return cast(T, await answer)
        except OSError:  # the pipe broke as the call was written: the worker is gone
            self.close()
            raise WorkerDied("a store worker died") from None
        except asyncio.CancelledError:
            answer.cancel()  # its answer, when it comes, is dropped
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

    async def _turn(self, loop: asyncio.AbstractEventLoop, large: bool) -> _Taken:
        """A worker for the call, and the future of its answer, once the calls before this one
        have theirs."""
        if not self._turns:
            taken = self._take(loop, large)
            if taken is not None:
                return taken
        turn: asyncio.Future[_Taken] = loop.create_future()
        self._turns.append((turn, large))
        try:
            return await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # handed a worker as it was cancelled
                worker, answer = turn.result()
                worker.answers.remove(answer)  # nothing was sent: no answer comes for it
                self._hand_on()
            raise

    def _take(self, loop: asyncio.AbstractEventLoop, large: bool) -> _Taken | None:
        """The worker with the fewest calls that can take this one, with the future of its
        answer in its place; None if none can."""
        able = [worker for worker in self._workers if worker.can_take(large)]
        if not able:
            return None
        worker = min(able, key=lambda worker: len(worker.answers))
        answer: asyncio.Future[Any] = loop.create_future()
        worker.answers.append(answer)
        worker.large = large
        return worker, answer

    def _hand_on(self) -> None:
        """Give the waiting calls, in order, the workers that can take them now."""
        while self._turns and self._loop is not None:
            turn, large = self._turns[0]
            if turn.done():  # cancelled while it waited
                self._turns.popleft()
                continue
            taken = self._take(self._loop, large)
            if taken is None:
                return
            self._turns.popleft()
            turn.set_result(taken)

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
        answer = worker.answers.popleft() if worker.answers else None
        worker.large = worker.large and bool(worker.answers)
        if answer is not None and not answer.done():
            if ok:
                answer.set_result(value)
            else:
                answer.set_exception(value)
        self._hand_on()

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
            for answer in worker.answers:
                if not answer.done():
                    answer.set_exception(WorkerDied("a store worker died"))
        while self._turns:
            turn, _ = self._turns.popleft()
            if not turn.done():
                turn.set_exception(WorkerDied("the store workers stopped"))


def _looked_at(sending: asyncio.Future[None]) -> None:
    """A send that failed after its call was cancelled: the pool sees the broken pipe."""
    if not sending.cancelled():
        sending.exception()


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

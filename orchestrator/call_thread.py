"""One thread that runs calls in order, several at a time, and answers an event loop's callers in
one trip per batch.

The journal's reads and writes, and the result cache's lookups, run on threads of their own.
Through a `ThreadPoolExecutor` each call cost the loop a `concurrent.futures.Future` and its chain
to an asyncio one: each answer was its own trip to the loop (a handle and a write to its wake-up
socket), and reading it took four lock rounds. Measured, 33 us of CPU a call against 11 this way.
Here a call made from the loop (`on_loop(loop)`) is given an asyncio future at once, and the
thread answers all the calls of a batch with one `call_soon_threadsafe`.

`on_loop(loop)` is an `Executor` whose `submit` returns that asyncio future, so the loop still
awaits the thread with `run_in_executor` (which passes an asyncio future through as it is): test
clocks that wait for executors (looptime) see the work in flight as before. `submit` itself
answers with a `concurrent.futures.Future`, for callers on other threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

__all__ = ["AnyFuture", "CallThread", "Outcome"]

MAX_BATCH = 64

AnyFuture = Future[Any] | asyncio.Future[Any]
Call = tuple[AnyFuture, Callable[[], Any]]
Outcome = tuple[AnyFuture, Any, BaseException | None]
"""A call's future, and its result or what it raised."""


class CallThread(Executor):
    """Runs calls on one thread, in the order they were submitted. `_run` runs a batch (the
    calls waiting when the thread is free); by default each call on its own."""

    def __init__(self, *, name: str) -> None:
        self._queue: queue.SimpleQueue[Call | None] = queue.SimpleQueue()
        self._open = True
        self._guard = threading.Lock()
        """Held to queue calls and to close: no call is queued behind the end."""
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()
        self._loop_side: tuple[asyncio.AbstractEventLoop, Executor] | None = None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        if not self._put([(future, functools.partial(fn, *args, **kwargs))]):
            raise RuntimeError("cannot run calls after shutdown")
        return future

    def _put(self, calls: list[Call]) -> bool:
        """Queue `calls`; False if the thread was shut down (nothing is queued then)."""
        with self._guard:
            if self._open:
                for call in calls:
                    self._queue.put(call)
            return self._open

    def on_loop(self, loop: asyncio.AbstractEventLoop) -> Executor:
        """This thread as `loop` awaits it: `submit` (from the loop's thread) returns an asyncio
        future of `loop`, answered in one trip with the rest of its batch."""
        side = self._loop_side
        if side is None or side[0] is not loop:
            side = self._loop_side = (loop, _LoopSide(self, loop))
        return side[1]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop once everything queued has run; a call made later is refused."""
        with self._guard:
            if self._open:
                self._open = False
                self._queue.put(None)
        if wait:
            self._thread.join()

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(more)
            # A call whose caller gave up before it started is not run (as a thread pool does).
            batch = [(future, call) for future, call in batch if _claim(future)]
            if batch:
                _answer(self._outcomes(batch))

    def _outcomes(self, batch: list[Call]) -> list[Outcome]:
        try:
            return self._run(batch)
        except BaseException as failed:  # the batch as a whole failed: every call with it
            return [(future, None, failed) for future, _ in batch]

    def _run(self, batch: list[Call]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for future, call in batch:
            try:
                outcomes.append((future, call(), None))
            except Exception as error:
                outcomes.append((future, None, error))
        return outcomes


class _LoopSide(Executor):
    """A `CallThread` as one event loop calls it. The calls made in one turn of the loop go to
    the thread together at the end of it: waking a thread that waits costs the waker about as
    much as the call itself (`SimpleQueue.put` was 4.5 % of the loop's GIL time in a run), and
    the calls a turn makes (several items' reads or verbs) then wake it once."""

    def __init__(self, thread: CallThread, loop: asyncio.AbstractEventLoop):
        self._thread = thread
        self._loop = loop
        self._held: list[Call] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        future = self._loop.create_future()
        if not self._held:
            self._loop.call_soon(self._send)
        self._held.append((future, functools.partial(fn, *args, **kwargs)))
        return future

    def _send(self) -> None:
        held, self._held = self._held, []
        if not self._thread._put(held):
            closed = RuntimeError("cannot run calls after shutdown")
            _settle([(future, None, closed) for future, _ in held])


def _claim(future: AnyFuture) -> bool:
    """Mark the call as started; False if its caller gave up on it already. An asyncio future
    is read from this thread: a caller that gives up a moment later is told nothing more (its
    future is done), as with a call already running in a thread pool."""
    if isinstance(future, Future):
        return future.set_running_or_notify_cancel()
    return not future.cancelled()


def _answer(outcomes: list[Outcome]) -> None:
    """Settle each future: a thread's at once, a loop's in one trip per loop."""
    on_loops: dict[asyncio.AbstractEventLoop, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        future = outcome[0]
        if isinstance(future, Future):
            _settle([outcome])
        else:
            on_loops[future.get_loop()].append(outcome)
    for loop, answers in on_loops.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is left to answer
            loop.call_soon_threadsafe(_settle, answers)


def _settle(outcomes: list[Outcome]) -> None:
    for future, result, raised in outcomes:
        if future.done():  # its caller gave up while it ran
            continue
        if raised is None:
            future.set_result(result)
        else:
            future.set_exception(raised)

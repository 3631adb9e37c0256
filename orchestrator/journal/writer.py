"""The journal's one writer thread, committing queued verbs several to a transaction.

Verbs arrive from the event loop (many items at once); each commit costs the same whatever it
holds, so the writer takes every verb waiting when it is free and runs them in one transaction.
Verbs rarely fail, so they first run with no savepoints; if one fails, the transaction is undone
and they all run again, each in a savepoint of its own: a verb that fails is undone alone and its
caller gets its error, the others commit together. Callers learn their result only once their
commit is durable.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from .store import Store

__all__ = ["Writer"]

MAX_BATCH = 64

_Call = tuple[Future[Any], Callable[[], Any]]


class Writer(Executor):
    """Runs calls on one thread, in order, grouping the ones that wait into one transaction.

    An `Executor`, so the loop awaits it with `run_in_executor` like any other (and test
    clocks that wait for executors see the work in flight)."""

    def __init__(self, store: Store, *, name: str = "journal-write") -> None:
        self._store = store
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()
        self.batches = 0
        """Transactions committed (fewer than calls when they were grouped)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((future, functools.partial(fn, *args, **kwargs)))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop once everything queued is committed."""
        if self._thread.is_alive():
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
            self._commit(batch)

    def _commit(self, batch: list[_Call]) -> None:
        # A call whose caller gave up before it started is not run (as a thread pool does).
        batch = [(future, call) for future, call in batch if future.set_running_or_notify_cancel()]
        if not batch:
            return
        try:
            try:
                outcomes = self._run(batch, guarded=False)
            except _Undone:  # a call failed: run them all again, each undone alone if it fails
                outcomes = self._run(batch, guarded=True)
        except BaseException as failed:  # the commit itself failed: nothing of it holds
            for future, _ in batch:
                future.set_exception(failed)
            return
        self.batches += 1
        for future, result, raised in outcomes:
            if raised is None:
                future.set_result(result)
            else:
                future.set_exception(raised)

    def _run(self, batch: list[_Call], *, guarded: bool) -> list[_Outcome]:
        """Run the calls in one transaction and commit it. Unguarded (the usual case: calls
        rarely fail) no call has a savepoint, and the first that fails undoes the transaction
        (`_Undone`); guarded, each call is undone alone if it fails."""
        outcomes: list[_Outcome] = []
        with self._store.writing_calls(guarded=guarded):
            for future, call in batch:
                if guarded:
                    outcomes.append((future, *_attempt(self._store, call)))
                    continue
                try:
                    outcomes.append((future, call(), None))
                except Exception as error:
                    raise _Undone() from error
        return outcomes


_Outcome = tuple[Future[Any], Any, BaseException | None]


class _Undone(Exception):
    """A call of an unguarded batch failed: the batch's transaction is undone."""


def _attempt(store: Store, call: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """Run `call` in a savepoint of the open transaction; its result, or what it raised."""
    try:
        with store.writing():
            return call(), None
    except Exception as error:
        return None, error

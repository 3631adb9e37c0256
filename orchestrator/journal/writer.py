"""The journal's one writer thread, committing queued verbs several to a transaction.

Verbs arrive from the event loop (many items at once); each commit costs the same whatever it
holds, so the writer takes every verb waiting when it is free and runs them in one transaction.
Verbs rarely fail, so they first run with no savepoints; if one fails, the transaction is undone
and they all run again, each in a savepoint of its own: a verb that fails is undone alone and its
caller gets its error, the others commit together. Callers learn their result only once their
commit is durable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..call_thread import Call, CallThread, Outcome
from .store import Store

__all__ = ["Writer"]


class Writer(CallThread):
    """Runs calls on one thread, in order, grouping the ones that wait into one transaction.

    An `Executor`, so the loop awaits it with `run_in_executor` like any other (through
    `on_loop`, see `call_thread`): test clocks that wait for executors see the work in flight."""

    def __init__(self, store: Store, *, name: str = "journal-write") -> None:
        self._store = store
        self.batches = 0
        """Transactions committed (fewer than calls when they were grouped)."""
        super().__init__(name=name)

    def _run(self, batch: list[Call]) -> list[Outcome]:
        try:
            outcomes = self._in_transaction(batch, guarded=False)
        except _Undone:  # a call failed: run them all again, each undone alone if it fails
            outcomes = self._in_transaction(batch, guarded=True)
        self.batches += 1
        return outcomes

    def _in_transaction(self, batch: list[Call], *, guarded: bool) -> list[Outcome]:
        """Run the calls in one transaction and commit it. Unguarded (the usual case: calls
        rarely fail) no call has a savepoint, and the first that fails undoes the transaction
        (`_Undone`); guarded, each call is undone alone if it fails."""
        outcomes: list[Outcome] = []
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


class _Undone(Exception):
    """A call of an unguarded batch failed: the batch's transaction is undone."""


def _attempt(store: Store, call: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """Run `call` in a savepoint of the open transaction; its result, or what it raised."""
    try:
        with store.writing():
            return call(), None
    except Exception as error:
        return None, error

"""The journal's SQLite database: one connection per thread, and its transactions.

`writing()` is one write transaction (`BEGIN IMMEDIATE`: one writer at a time across processes);
inside another on the same thread it is a savepoint, undone alone if it fails. `reading()` is one
deferred read transaction that sees a single committed state. Callbacks registered with
`after_commit` run once the outermost transaction has committed, never after a rollback.
`Store` (see `store.py`) builds the journal's typed records on this.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import storage_error, storage_errors

__all__ = ["BUSY_TIMEOUT_S", "Database"]

BUSY_TIMEOUT_S = 60.0
"""How long a connection waits for another process's write lock before it gives up."""


class Database:
    """Connections to one SQLite file in WAL mode, one per thread, and transactions on them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()

    def close(self) -> None:
        """Close every thread's connection (each must be idle)."""
        with self._guard:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()

    @property
    def _con(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection, self._local.depth = connection, 0
            with self._guard:
                self._connections.append(connection)
        return connection

    def _connect(self) -> sqlite3.Connection:
        """A new connection in WAL mode; `StorageError` if the workspace cannot take the files
        that needs (a full disk, a read-only file system)."""
        with storage_errors(self.path.parent.parent):
            connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                # FULL: a commit is on the disk before its caller hears of it, so what was
                # reported outlives a power cut (NORMAL keeps it only from a crash of the
                # process). The writer groups verbs into one commit: this costs nothing
                # measurable per image.
                connection.execute("PRAGMA synchronous=FULL")
            except BaseException:
                connection.close()
                raise
        return connection

    def trace(self, callback: Callable[[str], None] | None) -> None:
        """See every statement this thread's connection runs (for tests that count them)."""
        self._con.set_trace_callback(callback)

    # ----------------------------------------------------------- transactions

    @contextmanager
    def writing(self) -> Iterator[None]:
        """One write transaction. Inside another one on this thread it is a savepoint: its
        writes are undone alone if it fails, and made durable with the outer transaction
        (except directly inside `writing_calls(guarded=False)`)."""
        local = self._local.__dict__
        depth = local.get("depth")
        if depth:
            if local.get("reading"):
                # SQLite cannot wait for the write lock here: if another connection committed
                # since the read began, the write fails at once with "database is locked".
                raise RuntimeError("a write inside a read transaction; open it with writing()")
            if depth == 1 and local.get("unguarded"):
                self._local.depth = 2  # a call of an unguarded batch: no savepoint of its own
                try:
                    yield
                finally:
                    self._local.depth = 1
                return
            with self._savepoint():
                yield
            return
        with self._transaction("BEGIN IMMEDIATE"):
            yield

    @contextmanager
    def writing_calls(self, *, guarded: bool) -> Iterator[None]:
        """One write transaction for several calls that each open `writing()` (see `Writer`).
        Guarded, each call's `writing()` is a savepoint, as anywhere inside a transaction.
        Unguarded, it is not (two statements fewer per call, and two fewer times the thread lets
        go of the GIL): then a call that fails must not be committed, so the caller undoes the
        whole transaction by raising, and runs the calls again guarded."""
        with self.writing():
            self._local.unguarded = not guarded
            try:
                yield
            finally:
                self._local.unguarded = False

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        connection, name = self._con, f"sp{self._local.depth}"
        connection.execute(f"SAVEPOINT {name}")
        self._local.depth += 1
        try:
            yield
        except BaseException as error:
            self._local.memo = {}  # what it wrote is undone: what was read of it too
            self._undo(connection, error, f"ROLLBACK TO {name}", f"RELEASE {name}")
            self._raise_storage(error)
            raise
        else:
            connection.execute(f"RELEASE {name}")
        finally:
            self._local.depth -= 1

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this thread's transaction is committed (at once outside one);
        never if it is rolled back."""
        if self._local.__dict__.get("depth"):
            self._local.pending.append(callback)
        else:
            callback()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One read transaction: every read inside sees the same committed state."""
        with self._transaction("BEGIN"):
            yield

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[None]:
        connection = self._con
        if self._local.depth:
            self._local.depth += 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        try:
            connection.execute(begin)
        except sqlite3.OperationalError as error:
            self._raise_storage(error)
            raise
        self._local.reading = begin == "BEGIN"
        self._local.depth, self._local.pending, self._local.memo = 1, [], {}
        try:
            try:
                yield
                connection.execute("COMMIT")
            except BaseException as error:
                if connection.in_transaction:  # a failed COMMIT may have ended it already
                    self._undo(connection, error, "ROLLBACK")
                self._raise_storage(error)
                raise
            for callback in self._local.pending:
                callback()
        finally:
            self._local.depth, self._local.pending, self._local.reading = 0, [], False
            self._local.memo = {}

    def memo(self) -> dict[str, Any] | None:
        """Values this thread's write transaction read or made, that only it changes while it
        holds the write lock (the last event's seq, say); dropped when it ends and when a
        savepoint is undone. None outside a write transaction (another connection may write)."""
        local = self._local.__dict__
        if not local.get("depth") or local.get("reading"):
            return None
        memo: dict[str, Any] = local["memo"]
        return memo

    def _undo(self, connection: sqlite3.Connection, error: BaseException, *sql: str) -> None:
        """Undo a failed transaction or savepoint. On a disk that fails writes the undoing can
        fail too: then `error` is the one to raise (SQLite ends the transaction itself)."""
        try:
            for statement in sql:
                connection.execute(statement)
        except sqlite3.Error:
            if not isinstance(error, sqlite3.Error) or storage_error("", error) is None:
                raise

    def _raise_storage(self, error: BaseException) -> None:
        """Raise `StorageError` (`DiskFullError` for "database or disk is full") instead of
        SQLite's errors that mean the workspace cannot be written."""
        if isinstance(error, sqlite3.Error):
            unwritable = storage_error(self.path.parent.parent, error)
            if unwritable is not None:
                raise unwritable from None

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        """Run one statement on this thread's connection (for the journal's own modules)."""
        return self._con.execute(sql, args)

    def _one(self, sql: str, *args: Any) -> str | None:
        row = self._con.execute(sql, args).fetchone()
        return None if row is None else str(row[0])

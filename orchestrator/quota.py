"""A provider's start rate shared by every process on one workspace.

A lane paces the starts of one process. Ten processes started at once on one workspace against a
60/min quota would each keep to 60/min and send 600 together; the shared quota keeps them to 60.
It is a schedule kept in a small SQLite file in the workspace (`quota.sqlite`), one row per
provider, model and key: the "theoretical arrival time" of the generic cell rate algorithm. A
start reserves the next free moment in one short transaction (`BEGIN IMMEDIATE`, so processes
take turns), then waits until that moment on its own loop:

    now = the wall clock; tat = max(row, now)
    start at max(now, tat - (burst - 1) * interval); row = tat + interval

So starts are spaced `60 / rate` seconds apart across processes, `burst` of them may go at once
after a quiet spell, and a waiter never polls. A start reserved by a process that dies or is
cancelled before it calls is simply not used: the quota errs on the side of fewer calls. The
clock is the wall clock (`time.time()`), the one clock processes share.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["QUOTA_FILE", "SharedQuota"]

QUOTA_FILE = "quota.sqlite"
_BUSY_TIMEOUT_MS = 30_000
_FAR_S = 3600.0


class SharedQuota:
    """Starts per minute that every process on the workspace shares, per provider key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="quota")
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<SharedQuota {self.path}>"

    async def start(self, key: str, rate_per_minute: float, burst: int = 1) -> float:
        """Wait for this process's turn to start a call under `key`'s shared rate; returns
        the seconds waited."""
        loop = asyncio.get_running_loop()
        interval = 60.0 / rate_per_minute
        wait = await loop.run_in_executor(self._executor, self.reserve, key, interval, burst)
        if wait > 0:
            await asyncio.sleep(wait)
        return wait

    def reserve(self, key: str, interval: float, burst: int = 1, now: float | None = None) -> float:
        """Reserve the next free start under `key`; the seconds from `now` until it. Blocking:
        one short transaction."""
        with self._lock:
            connection = self._connect()
            now = time.time() if now is None else now
            connection.execute("BEGIN IMMEDIATE")
            try:
                row = connection.execute("SELECT tat FROM starts WHERE key = ?", (key,)).fetchone()
                tat = max(row[0] if row else now, now)
                if tat - now > _FAR_S + burst * interval:  # the wall clock went back: start over
                    tat = now
                start = max(now, tat - (burst - 1) * interval)
                connection.execute(
                    "INSERT INTO starts (key, tat) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET tat = excluded.tat",
                    (key, tat + interval),
                )
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            return start - now

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
        self._executor.shutdown(wait=False)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            connection.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # a lost row only means a free start
            connection.execute(
                "CREATE TABLE IF NOT EXISTS starts (key TEXT PRIMARY KEY, tat REAL NOT NULL)"
            )
            self._connection = connection
        return self._connection

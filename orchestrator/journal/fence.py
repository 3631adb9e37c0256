"""Whether a run still holds its job's key, read from the journal's file by anyone.

A runner's verbs check their lease inside their own transactions (see `runs`). A step that
writes outside the journal, in another process (a paid image stored by a worker process), checks
it with a `LeaseCheck`: what it needs to read the lock itself, on that process's own connection,
just before it writes. It only reads: a lease that is lost stays lost, so a check that passes
cannot be undone by the journal, only by another process taking the key over afterwards, which
the runner's next verb then sees.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from .database import BUSY_TIMEOUT_S

__all__ = ["LeaseCheck", "LeaseNotHeld", "carries_token"]

_local = threading.local()


def carries_token(lock: str | None, token: str) -> bool:
    """Whether a lock's text, as the journal keeps it, carries `token`. The journal writes it
    compact, so the pair is found as text (every verb of a run checks it: no parse then); a
    quote inside any other value is escaped, so only the token's own pair can match."""
    if lock is None:
        return False
    return f'"token":"{token}"' in lock or json.loads(lock).get("token") == token


class LeaseNotHeld(Exception):
    """Raised by `LeaseCheck.require` where the run no longer holds its key. It carries
    nothing, so it crosses a process boundary as it is; the runner then learns who holds the
    key from the journal itself."""


@dataclass(frozen=True)
class LeaseCheck:
    """What any process needs to check a run's lease: the journal's database file, where the
    lock of the job's key is kept in it, and the run's token."""

    database: Path
    slot: str
    token: str

    def held(self) -> bool:
        """Read the lock now (a read on this thread's connection to the database)."""
        query = "SELECT value FROM meta WHERE key = ?"
        # all read: the statement ends, and with it the read (no WAL kept from a checkpoint)
        rows = _connection(self.database).execute(query, (self.slot,)).fetchall()
        return carries_token(rows[0][0] if rows else None, self.token)

    def require(self) -> None:
        """`LeaseNotHeld` unless `held()`."""
        if not self.held():
            raise LeaseNotHeld()


def _connection(database: Path) -> sqlite3.Connection:
    """This thread's connection to `database`, opened on first use and kept (a worker process
    checks once per image it stores)."""
    connections: dict[Path, sqlite3.Connection] = _local.__dict__.setdefault("connections", {})
    connection = connections.get(database)
    if connection is None:  # mode=rw: a journal that is not there is an error, never made
        uri = f"{database.absolute().as_uri()}?mode=rw"
        connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        connections[database] = connection
    return connection

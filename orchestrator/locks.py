"""One active job per key: locks with an owner and a heartbeat, kept in the journal's store.

A lock lives in the journal's store under `lock/<key>`. Every read-modify-write runs in one write
transaction, so processes sharing a workspace agree on who holds a key. A lock is taken over when
its heartbeat is older than `stale_after_s`, or when its owner ran on this host and that process
is gone. The holder's `token` is its lease: the journal refuses a runner's write whose token is
no longer the lock's (fencing), so a holder that lost its lock cannot touch the new owner's work.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from .clock import SYSTEM_CLOCK, Clock
from .errors import JournalError, KeyConflictError, LeaseLostError
from .pids import ended

if TYPE_CHECKING:
    from .journal.store import Store

__all__ = ["KeyLocks", "LockOwner", "keep_alive", "lock_slot", "lost_message", "pid_alive"]


class LockOwner(BaseModel):
    """Who holds the lock on one key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    """The key this lock is for."""
    job_id: str
    pid: int
    """The holding process, meaningful on `host` only."""
    host: str
    started_at: float
    """Wall-clock time the lock was taken."""
    heartbeat_at: float
    """Wall-clock time the holder last said it is alive."""
    token: str
    """Identifies this holder (uuid4 hex); a holder that lost the lock no longer matches it."""


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host: it exists and is no zombie (see `pids.ended`).
    On Windows, always True (cannot tell safely)."""
    return not ended(pid)


class KeyLocks:
    """Takes, refreshes and gives back the per-key locks in the journal's store."""

    def __init__(
        self, store: Store, *, stale_after_s: float = 300.0, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._store = store
        self._clock = clock
        self.stale_after_s = stale_after_s
        self.host = socket.gethostname()
        self.pid = os.getpid()

    def acquire(self, key: str, job_id: str) -> LockOwner:
        """Take the lock on `key` for `job_id`, or raise `KeyConflictError` if a live job holds it.

        A lock is taken over when its heartbeat is stale, or when its owner ran on this host and
        is gone.
        """
        with self._store.writing():
            current = self._read(key)
            if current is not None and not self._can_take(current):
                raise self.conflict(current)
            now = self._clock.time()
            owner = LockOwner(
                key=key,
                job_id=job_id,
                pid=self.pid,
                host=self.host,
                started_at=now,
                heartbeat_at=now,
                token=uuid.uuid4().hex,
            )
            self._store.put_json(lock_slot(key), owner.model_dump())
        return owner

    def heartbeat(self, owner: LockOwner) -> bool:
        """Refresh the heartbeat if `owner` still holds its lock; False if the lock was lost."""
        with self._store.writing():
            current = self._read(owner.key)
            if current is None or current.token != owner.token:
                return False
            refreshed = current.model_copy(update={"heartbeat_at": self._clock.time()})
            self._store.put_json(lock_slot(owner.key), refreshed.model_dump())
        return True

    def release(self, owner: LockOwner) -> None:
        """Give the lock back; does nothing if someone else holds it now."""
        with self._store.writing():
            current = self._read(owner.key)
            if current is not None and current.token == owner.token:
                self._store.delete(lock_slot(owner.key))

    def holder(self, key: str) -> LockOwner | None:
        """Who holds `key` now, live or not; None if nobody does."""
        return self._read(key)

    def is_live(self, owner: LockOwner) -> bool:
        """Whether `owner`'s heartbeat is fresh and, on this host, its process still exists."""
        if self.heartbeat_age(owner) > self.stale_after_s:
            return False
        return owner.host != self.host or pid_alive(owner.pid)

    def heartbeat_age(self, owner: LockOwner) -> float:
        """Seconds since `owner` last said it is alive."""
        return max(0.0, self._clock.time() - owner.heartbeat_at)

    def clear(self, key: str) -> LockOwner | None:
        """Remove the lock on `key` whoever holds it (by hand); returns what was removed."""
        with self._store.writing():
            raw = self._store.get_json(lock_slot(key))
            self._store.delete(lock_slot(key))
        if raw is None:
            return None
        try:
            return _parse(raw, key)
        except JournalError:
            return None

    def _can_take(self, current: LockOwner) -> bool:
        # Not re-entrant, even for this same process: a second runner of a job that is already
        # running here (a notebook cell run twice) would generate its running images again.
        return not self.is_live(current)

    def conflict(self, owner: LockOwner) -> KeyConflictError:
        age = self.heartbeat_age(owner)
        return KeyConflictError(
            f"key {owner.key!r} is held by job {owner.job_id} (pid {owner.pid} on {owner.host}, "
            f"heartbeat {age:.0f}s ago); wait for it, cancel that job, or clear the key's lock "
            "if that process is gone",
            key=owner.key,
            job_id=owner.job_id,
            live=True,
        )

    def _read(self, key: str) -> LockOwner | None:
        raw = self._store.get_json(lock_slot(key))
        return None if raw is None else _parse(raw, key)


class _Heartbeats(Protocol):
    async def heartbeat(self, owner: LockOwner) -> bool: ...

    async def holder(self, key: str) -> LockOwner | None: ...


async def keep_alive(locks: _Heartbeats, owner: LockOwner, interval_s: float, clock: Clock) -> None:
    """Refresh `owner`'s heartbeat every `interval_s` until cancelled.

    Raises `LeaseLostError` as soon as the lock turns out to be lost (taken over or cleared), so
    the runner that holds it stops within one heartbeat even if it writes nothing meanwhile.
    """
    while True:
        await clock.sleep(interval_s)
        if not await locks.heartbeat(owner):
            raise LeaseLostError(
                lost_message(owner, await locks.holder(owner.key)), job_id=owner.job_id
            )


def lost_message(owner: LockOwner, holder: LockOwner | None) -> str:
    """Why `owner` may no longer write: its lock was cleared or another job holds it."""
    if holder is None:
        return (
            f"lock for key {owner.key!r} was cleared (by hand, or by a process that took the job "
            f"over and has finished); job {owner.job_id} stops"
        )
    return (
        f"lock for key {owner.key!r} was taken over by job {holder.job_id} "
        f"(pid {holder.pid} on {holder.host}); job {owner.job_id} stops"
    )


def lock_slot(key: str) -> str:
    """Where the lock on `key` is kept in the journal's `meta` table."""
    return f"lock/{key}"


def _parse(raw: Any, key: str) -> LockOwner:
    try:
        return LockOwner.model_validate(raw)
    except ValidationError as exc:
        raise JournalError(
            f"the lock for key {key!r} is unreadable ({exc.error_count()} errors); "
            "clear the key's lock to go on",
            option="clear_lock",
        ) from exc

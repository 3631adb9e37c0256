"""The durable job journal: the only writer of job and item state.

Layout of the diskcache `Index` (values are small JSON-able dicts, never image bytes):

```
("job", job_id)            -> JobRecord
("item", job_id, item_id)  -> ItemRecord
("jobs",)                  -> [job_id, ...] in creation order
("key", key)               -> job_id of the newest job with that key
("seq",)                   -> last event sequence number
("event", seq)             -> Event
("lock", key)              -> lock owner (see locks.py)
```

Every change goes through `Journal._commit`: one diskcache transaction that checks each item
transition against `states`, derives the job's status from its item counts, writes the records
and appends the events. Nothing is awaited inside it. Events are published to the in-process
bus after the transaction commits; other processes read them with `events()`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import diskcache

from .errors import JournalError, KeyConflictError, NotFoundError
from .records import AttemptRecord, ErrorInfo, Event, EventType, ItemRecord, JobRecord
from .spec import JobSpec
from .states import (
    ITEM_ACTIVE,
    JOB_TERMINAL,
    ItemStatus,
    JobStatus,
    check_transition,
    derive_job_status,
)

__all__ = [
    "ItemChange",
    "Journal",
    "attempt_ended",
    "attempt_started",
    "error_info",
    "open_index",
]

# Values up to this size stay inside SQLite, so a rolled-back transaction never loses a file.
_INLINE_VALUE_BYTES = 1 << 24


class EventSink(Protocol):
    def publish(self, event: Event) -> None: ...


@dataclass(frozen=True)
class ItemChange:
    """One item's part of a commit: its new status (or none) and the fields to set."""

    item_id: str
    event: EventType
    to: ItemStatus | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    only_from: frozenset[ItemStatus] | None = None
    """Skip the item (no error, no event) unless it is in one of these statuses."""


def open_index(directory: Path) -> diskcache.Index:
    """Open (or create) a diskcache Index that never evicts and keeps values inline."""
    directory.mkdir(parents=True, exist_ok=True)
    cache = diskcache.Cache(
        str(directory), eviction_policy="none", disk_min_file_size=_INLINE_VALUE_BYTES
    )
    return diskcache.Index.fromcache(cache)


class Journal:
    """Jobs, items and events of one workspace."""

    def __init__(
        self,
        directory: Path,
        *,
        bus: EventSink | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.index = open_index(directory)
        self.bus = bus
        self._now = now

    def close(self) -> None:
        self.index.cache.close()

    # ----------------------------------------------------------------- reads

    def job(self, job_id: str) -> JobRecord:
        raw = self.index.get(("job", job_id))
        if raw is None:
            raise NotFoundError(f"job {job_id!r} not found; `imagebatch list` shows the jobs")
        return JobRecord.model_validate(raw)

    def jobs(self) -> list[JobRecord]:
        return [self.job(job_id) for job_id in self.index.get(("jobs",), [])]

    def item(self, job_id: str, item_id: str) -> ItemRecord:
        raw = self.index.get(("item", job_id, item_id))
        if raw is None:
            raise NotFoundError(f"job {job_id!r} has no item {item_id!r}")
        return ItemRecord.model_validate(raw)

    def items(self, job_id: str) -> list[ItemRecord]:
        return [self.item(job_id, item_id) for item_id in self.job(job_id).item_ids]

    def last_seq(self) -> int:
        value: int = self.index.get(("seq",), 0)
        return value

    def events(
        self, *, after: int = 0, job_id: str | None = None, limit: int = 10_000
    ) -> list[Event]:
        """Committed events with a sequence number above `after`, oldest first."""
        found: list[Event] = []
        for seq in range(after + 1, self.last_seq() + 1):
            raw = self.index.get(("event", seq))
            if raw is None:
                continue
            event = Event.model_validate(raw)
            if job_id is None or event.job_id == job_id:
                found.append(event)
                if len(found) >= limit:
                    break
        return found

    def active_job_for_key(self, key: str) -> JobRecord | None:
        """The newest job with `key` if it has not reached a terminal status."""
        job_id = self.index.get(("key", key))
        if job_id is None:
            return None
        job = self.job(job_id)
        return None if job.status in JOB_TERMINAL else job

    # ---------------------------------------------------------------- writes

    def create_job(self, spec: JobSpec) -> JobRecord:
        """Record a new job and its items as pending. Refuses a key that has an active job."""
        now = self._now()
        job_id = f"{spec.key[:40].replace(':', '-')}-{secrets.token_hex(3)}"
        job = JobRecord(
            id=job_id,
            config=spec.config,
            item_ids=tuple(item.id for item in spec.items),
            counts={ItemStatus.PENDING: len(spec.items)},
            created_at=now,
            updated_at=now,
        )
        items = [
            ItemRecord(
                job_id=job_id,
                id=item.id,
                index=index,
                prompt=item.prompt,
                params=spec.params_for(item),
                references=item.references,
                created_at=now,
                updated_at=now,
            )
            for index, item in enumerate(spec.items)
        ]
        with self.index.transact():
            active = self.active_job_for_key(spec.key)
            if active is not None:
                raise _conflict(active)
            self.index[("job", job_id)] = job.model_dump(mode="json")
            for item in items:
                self.index[("item", job_id, item.id)] = item.model_dump(mode="json")
            self.index[("jobs",)] = [*self.index.get(("jobs",), []), job_id]
            self.index[("key", spec.key)] = job_id
            event = self._append(EventType.JOB_CREATED, job, None, {"total": len(items)})
        self._publish([event])
        return job

    def update_items(
        self,
        job_id: str,
        changes: Iterable[ItemChange],
        *,
        job_changes: Mapping[str, Any] | None = None,
        job_event: EventType | None = None,
        job_data: Mapping[str, Any] | None = None,
    ) -> JobRecord:
        """The one writer: apply item changes and job changes in one transaction."""
        with self.index.transact():
            job, events = self._commit(
                job_id, list(changes), dict(job_changes or {}), job_event, job_data
            )
        self._publish(events)
        return job

    def update_item(
        self,
        job_id: str,
        item_id: str,
        event: EventType,
        *,
        to: ItemStatus | None = None,
        data: Mapping[str, Any] | None = None,
        **changes: Any,
    ) -> ItemRecord:
        """Change one item (see `update_items`); returns the item as committed."""
        change = ItemChange(item_id, event, to, changes, data or {})
        self.update_items(job_id, [change])
        return self.item(job_id, item_id)

    def update_job(
        self, job_id: str, event: EventType, data: Mapping[str, Any] | None = None, **changes: Any
    ) -> JobRecord:
        """Change job-level fields (`active`, `cancel_requested`, ...) and log `event`."""
        return self.update_items(
            job_id, [], job_changes=changes, job_event=event, job_data=data or {}
        )

    def recover(self, job_id: str) -> list[str]:
        """Put items left `running` by a process that died back to `pending`.

        Their open attempt is closed as `interrupted`. A raw image already written stays
        recorded, so the pipeline only post-processes it: no second paid call.
        """
        now = self._now()
        changes = [
            ItemChange(
                item.id,
                EventType.ITEM_RESET,
                ItemStatus.PENDING,
                {"attempts": attempt_ended(item, now, "interrupted")},
                {"reason": "interrupted"},
            )
            for item in self.items(job_id)
            if item.status == ItemStatus.RUNNING
        ]
        if changes:
            self.update_items(job_id, changes)
        return [change.item_id for change in changes]

    # -------------------------------------------------------------- internals

    def _commit(
        self,
        job_id: str,
        changes: list[ItemChange],
        job_changes: dict[str, Any],
        job_event: EventType | None,
        job_data: Mapping[str, Any] | None,
    ) -> tuple[JobRecord, list[Event]]:
        job = self.job(job_id)
        counts = dict(job.counts)
        cost_delta = 0.0
        written: list[tuple[ItemRecord, ItemChange]] = []
        current: dict[str, ItemRecord] = {}  # two changes to one item apply one after the other
        for change in changes:
            item = current.get(change.item_id) or self.item(job_id, change.item_id)
            if change.only_from is not None and item.status not in change.only_from:
                continue
            updated = self._apply(item, change)
            cost_delta += (updated.cost_usd or 0.0) - (item.cost_usd or 0.0)
            if updated.status != item.status:
                counts[item.status] = counts.get(item.status, 0) - 1
                counts[updated.status] = counts.get(updated.status, 0) + 1
            written.append((updated, change))
            current[item.id] = updated
        if cost_delta:
            job_changes["cost_usd"] = job.cost_usd + cost_delta
        job = self._next_job(job, counts, job_changes)
        events = []
        for item, change in written:
            self.index[("item", job_id, item.id)] = item.model_dump(mode="json")
            events.append(self._append(change.event, job, item, dict(change.data)))
        self.index[("job", job_id)] = job.model_dump(mode="json")
        if job_event is not None:
            events.append(self._append(job_event, job, None, dict(job_data or {})))
        return job, events

    def _apply(self, item: ItemRecord, change: ItemChange) -> ItemRecord:
        update = dict(change.changes)
        unknown = set(update) - set(ItemRecord.model_fields)
        if unknown:
            raise JournalError(f"unknown item fields {sorted(unknown)}")
        if change.to is not None and change.to != item.status:
            check_transition(item.status, change.to)
            update["status"] = change.to
            if change.to in ITEM_ACTIVE:
                update.setdefault("finished_at", None)
            else:
                update.setdefault("finished_at", self._now())
        update["updated_at"] = self._now()
        return ItemRecord.model_validate({**item.model_dump(), **update})

    def _next_job(
        self, job: JobRecord, counts: dict[ItemStatus, int], changes: dict[str, Any]
    ) -> JobRecord:
        now = self._now()
        counts = {status: n for status, n in counts.items() if n}
        merged = {**job.model_dump(), **changes, "counts": counts, "updated_at": now}
        active = bool(merged["active"])
        status = derive_job_status(counts, active=active, cancelled=bool(merged["cancelled"]))
        merged["status"] = status
        if status in JOB_TERMINAL:
            merged["finished_at"] = job.finished_at or now
            merged["cancel_requested"] = False
        else:
            merged["finished_at"] = None
        if status == JobStatus.RUNNING and job.started_at is None:
            merged["started_at"] = now
        return JobRecord.model_validate(merged)

    def _append(
        self, kind: EventType, job: JobRecord, item: ItemRecord | None, data: dict[str, Any]
    ) -> Event:
        seq = self.index.get(("seq",), 0) + 1
        event = Event(
            seq=seq,
            ts=self._now(),
            type=kind,
            job_id=job.id,
            item_id=item.id if item else None,
            status=str(item.status if item else job.status),
            data=data,
        )
        self.index[("seq",)] = seq
        self.index[("event", seq)] = event.model_dump(mode="json")
        return event

    def _publish(self, events: list[Event]) -> None:
        if self.bus is None:
            return
        for event in events:
            self.bus.publish(event)


def _conflict(active: JobRecord) -> KeyConflictError:
    return KeyConflictError(
        f"key {active.key!r} already has an active job {active.id} ({active.status}); "
        f"`imagebatch resume {active.id}` continues it, `imagebatch cancel {active.id}` ends it",
        key=active.key,
        job_id=active.id,
    )


def error_info(error: BaseException) -> ErrorInfo:
    """The journal's record of an error (its kind and message, never a traceback)."""
    kind = getattr(error, "kind", None) or type(error).__name__
    retryable = bool(getattr(error, "retryable", False))
    return ErrorInfo(kind=kind, message=str(error) or kind, retryable=retryable)


def attempt_started(item: ItemRecord, now: float) -> tuple[AttemptRecord, ...]:
    """The item's attempts with a new running one appended.

    It is an automatic retry when the previous attempt failed and the item still carries that
    error (an explicit `retry` clears it; a resume after an interrupt follows no failed attempt).
    """
    retry = bool(item.attempts) and item.attempts[-1].outcome == "error" and item.error is not None
    attempt = AttemptRecord(number=len(item.attempts) + 1, started_at=now, retry=retry)
    return (*item.attempts, attempt)


def attempt_ended(
    item: ItemRecord, now: float, outcome: str, error: ErrorInfo | None = None, **extra: Any
) -> tuple[AttemptRecord, ...]:
    """The item's attempts with the last (running) one closed."""
    if not item.attempts or item.attempts[-1].outcome != "running":
        return item.attempts
    last = item.attempts[-1].model_copy(
        update={"ended_at": now, "outcome": outcome, "error": error, **extra}
    )
    return (*item.attempts[:-1], last)

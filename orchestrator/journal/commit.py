"""The one way state changes: `commit` applies item changes and job changes in the open write
transaction, checks every item transition against `states`, derives the job's status from its
item counts, writes the records and appends one event per change. The journal's verbs (see
`journal.py`) each build their changes and call it once; nothing else writes job or item state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..events import Event
from ..records import AttemptRecord, ErrorInfo, ItemRecord, JobRecord
from ..states import ITEM_ACTIVE, JOB_TERMINAL, ItemStatus, JobStatus, check_transition
from ..states import derive_job_status as derive
from .store import Store

__all__ = ["Change", "Committed", "attempt_ended", "attempt_started", "commit", "error_info"]

EventFactory = Callable[..., Event]
"""An event class: called with seq, ts, job_id, item_id, status and its own fields."""


@dataclass(frozen=True)
class Change:
    """One item's part of a commit: its new status (or none), new fields, and its event."""

    item: ItemRecord
    event: EventFactory | None
    """The item's event; none for a change no reader needs to see on its own."""
    to: ItemStatus | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Committed:
    """What a commit wrote: the job as it is now, the items it changed, the events it added."""

    job: JobRecord
    items: list[ItemRecord]
    events: list[Event]


def commit(
    store: Store,
    job: JobRecord,
    changes: list[Change],
    now: float,
    *,
    job_fields: Mapping[str, Any] | None = None,
    job_event: tuple[EventFactory, Mapping[str, Any]] | None = None,
) -> Committed:
    """Apply `changes` to `job` (read in this transaction) and record them with their events.
    Changes to one item apply one after the other (each to what the one before made), and the
    item is written once."""
    counts = dict(job.counts)
    cost, reserved, uncertain = job.cost_usd, job.reserved_usd, job.uncertain_usd
    latest: dict[str, ItemRecord] = {}
    applied: list[tuple[ItemRecord, Change]] = []
    for change in changes:
        before = latest.get(change.item.id, change.item)
        updated = _apply(change, before, now)
        cost += (updated.cost_usd or 0.0) - (before.cost_usd or 0.0)
        reserved += updated.reserved_usd - before.reserved_usd
        uncertain += updated.uncertain_usd - before.uncertain_usd
        counts[before.status] = counts.get(before.status, 0) - 1
        counts[updated.status] = counts.get(updated.status, 0) + 1
        latest[updated.id] = updated
        applied.append((updated, change))
    written = list(latest.values())
    merged = {
        **dict(job_fields or {}),
        "cost_usd": cost,
        "reserved_usd": max(0.0, round(reserved, 9)),
        "uncertain_usd": round(uncertain, 9),
    }
    job = _next_job(job, counts, merged, now)
    for updated in written:
        store.put_item(updated)
    store.put_job(job)
    events = _events(store.last_seq(), job, applied, job_event, now)
    store.append_events(events)
    return Committed(job, written, events)


def _events(
    seq: int,
    job: JobRecord,
    applied: list[tuple[ItemRecord, Change]],
    job_event: tuple[EventFactory, Mapping[str, Any]] | None,
    now: float,
) -> list[Event]:
    """The commit's events, numbered on from `seq`: one per item change, then the job's."""
    events: list[Event] = []
    for updated, change in applied:
        if change.event is not None:
            seq += 1
            base = {"seq": seq, "ts": now, "job_id": job.id, "status": updated.status}
            events.append(change.event(**base, item_id=updated.id, **change.payload))
    if job_event is not None:
        kind, payload = job_event
        events.append(kind(seq=seq + 1, ts=now, job_id=job.id, status=job.status, **payload))
    return events


def _apply(change: Change, item: ItemRecord, now: float) -> ItemRecord:
    update = dict(change.fields)
    if change.to is not None and change.to != item.status:
        check_transition(item.status, change.to)
        update["status"] = change.to
        update["finished_at"] = None if change.to in ITEM_ACTIVE else now
        if change.to != ItemStatus.RUNNING:
            update.setdefault("cancel_requested", False)
    update["updated_at"] = now
    return item.model_copy(update=update)


def _next_job(
    job: JobRecord, counts: dict[ItemStatus, int], changes: dict[str, Any], now: float
) -> JobRecord:
    counts = {status: n for status, n in counts.items() if n}
    active = changes.get("active", job.active)
    status = derive(counts, active=active, cancelled=changes.get("cancelled", job.cancelled))
    update: dict[str, Any] = {**changes, "counts": counts, "updated_at": now, "status": status}
    if status in JOB_TERMINAL:
        update["finished_at"] = job.finished_at or now
        update["cancel_requested"] = False
    else:
        update["finished_at"] = None
    if status == JobStatus.RUNNING and job.started_at is None:
        update["started_at"] = now
    return job.model_copy(update=update)


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

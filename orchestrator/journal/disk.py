"""The journal on disk: reads, and every change as a named verb, one transaction each.

Two kinds of writers use it. A *runner* (the process running a job) writes with its lease, the
lock owner it took for the job's key: `start_run`, `start_attempt`, `record_image`, `complete`,
`retry_later`, `fail`, `stop`, `finish_run` (in `runs.py`). Each checks the lease inside its
transaction and raises `LeaseLostError` if the key's lock is no longer that owner's (fencing), so
a runner whose lock was taken over cannot touch the new owner's items. *Requests* come from
anyone (this process or another): `request_cancel`, `cancel_items`, `request_retry`; the runner
carries them out when it sees their events. The webhook sender keeps the messages it could not
deliver with `keep_undelivered` and drops them with `forget_undelivered` once they go through.

Everything here is synchronous and short; the async `Journal` runs it on its own threads.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import KeyConflictError, LeaseLostError
from ..events import (
    Event,
    JobCreated,
)
from ..locks import KeyLocks, LockOwner, lost_message
from ..records import ItemRecord, JobRecord, JobSnapshot
from ..references import dependencies
from ..spec import JobSpec
from ..states import JOB_TERMINAL, ItemStatus
from ..webhooks.models import UndeliveredWebhook
from . import outbox
from .commit import Change, Committed, EventFactory, commit
from .requests import RequestVerbs
from .store import Store

__all__ = ["DiskJournal"]

OnCommit = Callable[[list[Event]], None]


class DiskJournal(RequestVerbs):
    """Jobs, items, events and locks of one workspace."""

    def __init__(
        self,
        directory: Path,
        *,
        stale_after_s: float = 300.0,
        clock: Clock = SYSTEM_CLOCK,
        on_commit: OnCommit | None = None,
    ) -> None:
        self.store = Store(directory)
        self.locks = KeyLocks(self.store, stale_after_s=stale_after_s, clock=clock)
        self.on_commit = on_commit
        """Called with the events of each commit once it is durable (the async journal
        hands them to the in-process bus)."""
        self._now: Callable[[], float] = time.time

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ reads

    def job(self, job_id: str) -> JobRecord:
        return self.store.job(job_id)

    def jobs(self) -> list[JobRecord]:
        with self.store.reading():
            return self.store.jobs()

    def item(self, job_id: str, item_id: str) -> ItemRecord:
        return self.store.item(job_id, item_id)

    def items(self, job_id: str) -> list[ItemRecord]:
        return self.snapshot(job_id).items

    def snapshot(self, job_id: str) -> JobSnapshot:
        """The job, its items and the last event seq, from one read transaction."""
        with self.store.reading():
            job = self.store.job(job_id)
            return JobSnapshot(job, self.store.items(job), self.store.last_seq())

    def last_seq(self) -> int:
        return self.store.last_seq()

    def events(
        self, *, after: int = 0, job_id: str | None = None, limit: int = 10_000
    ) -> list[Event]:
        """Committed events with a sequence number above `after`, oldest first."""
        return self.events_since(after, job_id, limit)[0]

    def events_since(
        self, after: int, job_id: str | None = None, limit: int = 10_000
    ) -> tuple[list[Event], int]:
        """Events after `after` and the last sequence number the read covered."""
        with self.store.reading():
            return self.store.events(after, job_id, limit)

    def runner_live(self, job: JobRecord) -> bool:
        """A live process holds this job's key lock."""
        holder = self.locks.holder(job.key)
        return holder is not None and holder.job_id == job.id and self.locks.is_live(holder)

    # --------------------------------------------------------------- creating

    def create_job(
        self, spec: JobSpec, *, lock: bool = False, prompts: Mapping[str, str] | None = None
    ) -> tuple[JobRecord, LockOwner | None]:
        """Record a new job and its items as pending; with `lock`, take its key's lock in the
        same transaction (so a refused run leaves no job behind). `prompts` are the prompts the
        items are sent, by item id (`presets.final_prompts`); without them, their own.

        Refused (`KeyConflictError`) while the key's newest job is unfinished (running it again
        would pay twice for what it finished: resume it or cancel it) or a live process holds
        the key's lock.
        """
        now = self._now()
        job_id = f"{spec.key[:40].replace(':', '-')}-{secrets.token_hex(3)}"
        job = JobRecord(
            id=job_id,
            config=spec.config,
            total=len(spec.items),
            counts={ItemStatus.PENDING: len(spec.items)},
            created_at=now,
            updated_at=now,
        )
        with self.store.writing():
            self._check_key_free(spec.key)
            owner = self.locks.acquire(spec.key, job_id) if lock else None
            waits = dependencies(spec.items, spec.consistency, spec.anchor)
            items = [
                _new_item(spec, job_id, n, now, (prompts or {}).get(item.id), waits[item.id])
                for n, item in enumerate(spec.items)
            ]
            self.store.add_job(job, items)
            seq = self.store.last_seq() + 1
            event = JobCreated(seq=seq, ts=now, job_id=job_id, status=job.status, total=job.total)
            self.store.append_event(event)
        self._published([event])
        return job, owner

    def _check_key_free(self, key: str) -> None:
        newest = self.store.newest_job_id(key)
        if newest is not None:
            job = self.store.job(newest)
            if job.status not in JOB_TERMINAL:
                raise KeyConflictError(
                    f"key {key!r} already has an unfinished job {job.id} ({job.status}); "
                    f"resume it to finish without paying again, or cancel it",
                    key=key,
                    job_id=job.id,
                )
        holder = self.locks.holder(key)
        if holder is not None and self.locks.is_live(holder):
            raise self.locks.conflict(holder)

    # --------------------------------------------------------------- webhooks

    def undelivered(self, job_id: str) -> list[UndeliveredWebhook]:
        """The job's webhook messages that were not delivered, oldest first."""
        with self.store.reading():
            self.store.job(job_id)  # an unknown job is an error, not an empty list
            return outbox.undelivered(self.store, job_id)

    def keep_undelivered(self, messages: list[UndeliveredWebhook]) -> None:
        """Keep webhook messages that were not delivered (replacing earlier copies by id)."""
        with self.store.writing():
            outbox.keep(self.store, messages)

    def forget_undelivered(self, job_id: str, ids: list[str]) -> None:
        """Drop kept webhook messages that have now been delivered."""
        with self.store.writing():
            outbox.forget(self.store, job_id, ids)

    # --------------------------------------------------------------- internals

    def fence(self, job: JobRecord, lease: LockOwner) -> None:
        """Raise `LeaseLostError` unless `lease` still holds the job's key."""
        holder = self.locks.holder(job.key)
        if holder is None or holder.token != lease.token:
            raise LeaseLostError(lost_message(lease, holder), job_id=lease.job_id)

    def _commit(
        self,
        job: JobRecord,
        changes: list[Change],
        *,
        job_fields: Mapping[str, Any] | None = None,
        job_event: tuple[EventFactory, Mapping[str, Any]] | None = None,
    ) -> Committed:
        return commit(
            self.store, job, changes, self._now(), job_fields=job_fields, job_event=job_event
        )

    def _published(self, events: list[Event]) -> None:
        """Hand `events` on once their transaction is durable."""
        on_commit = self.on_commit
        if events and on_commit is not None:
            self.store.after_commit(lambda: on_commit(events))


def _new_item(
    spec: JobSpec,
    job_id: str,
    index: int,
    now: float,
    final_prompt: str | None,
    depends_on: tuple[str, ...],
) -> ItemRecord:
    item = spec.items[index]
    return ItemRecord(
        job_id=job_id,
        id=item.id,
        index=index,
        prompt=item.prompt,
        final_prompt=final_prompt,
        priority=item.priority,
        params=spec.params_for(item),
        references=tuple(ref for ref in item.references if ref not in depends_on),
        depends_on=depends_on,
        created_at=now,
        updated_at=now,
    )

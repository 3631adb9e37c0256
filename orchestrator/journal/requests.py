"""Requests anyone may make of a job, from this process or another: cancel it, cancel some of
its items, retry its failed and cancelled items, stop its run once the requests under way end.

Each is one transaction that changes what can change at once (pending items) and leaves the
rest to the job's live runner, which carries the request out when it sees its event. With no
live runner, running items are stopped at once. `DiskJournal` has these verbs; they live here
so that the journal's two kinds of writers, runners (`runs.py`) and requesters, read apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..errors import ConfigError
from ..events import Event, ItemCancelled, ItemReset, JobCancelRequested, JobStopRequested
from ..records import ItemRecord, JobRecord
from ..states import ITEM_TERMINAL, JOB_TERMINAL, ItemStatus
from .commit import Change, Committed, EventFactory, attempt_ended
from .store import Store

__all__ = ["RETRYABLE", "RequestVerbs"]

RETRYABLE = frozenset({ItemStatus.FAILED, ItemStatus.CANCELLED})
"""What a retry puts back to pending."""


class _Journal(Protocol):
    """What the request verbs use of `DiskJournal`."""

    store: Store
    _now: Callable[[], float]

    def runner_live(self, job: JobRecord) -> bool: ...

    def _commit(
        self,
        job: JobRecord,
        changes: list[Change],
        *,
        job_fields: Mapping[str, Any] | None = None,
        job_event: tuple[EventFactory, Mapping[str, Any]] | None = None,
    ) -> Committed: ...

    def _published(self, events: list[Event]) -> None: ...


class RequestVerbs:
    """The request verbs of `DiskJournal`."""

    def request_cancel(self: _Journal, job_id: str) -> JobRecord:
        """Cancel the job: pending items at once; running ones by their live runner (or at once
        when none is running them). From then on no new attempt starts for the job."""
        with self.store.writing():
            job = self.store.job(job_id)
            if job.status in JOB_TERMINAL:
                return job
            live = self.runner_live(job)
            stoppable = {ItemStatus.PENDING} if live else {ItemStatus.PENDING, ItemStatus.RUNNING}
            now = self._now()
            changes = [
                _cancelled(item, now) for item in self.store.items(job) if item.status in stoppable
            ]
            done = self._commit(
                job,
                changes,
                job_fields={"cancel_requested": live, "cancelled": True},
                job_event=(JobCancelRequested, {}),
            )
        self._published(done.events)
        return done.job

    def request_stop(self: _Journal, job_id: str) -> bool:
        """Ask the job's live runner to start no new request and stop once the requests under
        way are kept (they may be billed); the job stays resumable. False, and nothing written,
        when no live process runs it."""
        with self.store.writing():
            job = self.store.job(job_id)
            if job.status in JOB_TERMINAL or not job.active or not self.runner_live(job):
                return False
            stopping = {"stopping": True}
            done = self._commit(job, [], job_fields=stopping, job_event=(JobStopRequested, {}))
        self._published(done.events)
        return True

    def cancel_items(self: _Journal, job_id: str, item_ids: list[str]) -> list[str]:
        """Cancel these items: pending ones at once, running ones by their runner. Returns the
        ids that were pending or running (finished items are left as they are)."""
        with self.store.writing():
            job = self.store.job(job_id)
            items = [self.store.item(job_id, item_id) for item_id in dict.fromkeys(item_ids)]
            live, now = self.runner_live(job), self._now()
            changes: list[Change] = []
            for item in items:
                if item.status == ItemStatus.PENDING or (
                    item.status == ItemStatus.RUNNING and not live
                ):
                    changes.append(_cancelled(item, now))
                elif item.status == ItemStatus.RUNNING:
                    changes.append(Change(item, None, fields={"cancel_requested": True}))
            asked = [item.id for item in items if item.status not in ITEM_TERMINAL]
            payload = {"item_ids": tuple(asked)}
            done = self._commit(job, changes, job_event=(JobCancelRequested, payload))
        self._published(done.events)
        return asked

    def request_retry(self: _Journal, job_id: str, item_ids: list[str] | None = None) -> list[str]:
        """Put failed and cancelled items (all, or those named) back to pending, each with a
        fresh set of attempts; a live runner starts them, else `start`/`resume` does. An image
        already paid for is kept, so an item that failed in post-processing is only
        post-processed again."""
        with self.store.writing():
            job = self.store.job(job_id)
            items = (
                [self.store.item(job_id, item_id) for item_id in dict.fromkeys(item_ids)]
                if item_ids
                else [item for item in self.store.items(job) if item.status in RETRYABLE]
            )
            for item in items:
                if item.status not in RETRYABLE:
                    raise ConfigError(
                        f"item {item.id!r} is {item.status}; only failed or cancelled items "
                        "can be retried"
                    )
            changes = [
                Change(
                    item,
                    ItemReset,
                    ItemStatus.PENDING,
                    {
                        "error": None,
                        "retry_at": None,
                        "attempts_before_retry": item.attempt_count,
                        "crashes": 0,
                    },
                    {"reason": "retry"},
                )
                for item in items
            ]
            fields = {"cancelled": False, "cancel_requested": False}
            done = self._commit(job, changes, job_fields=fields)
        self._published(done.events)
        return [item.id for item in items]


def _cancelled(item: ItemRecord, now: float) -> Change:
    """A request stops the item at once: cancelled, with its open attempt (if any) closed."""
    fields = {"attempts": attempt_ended(item, now, "cancelled"), "retry_at": None}
    return Change(item, ItemCancelled, ItemStatus.CANCELLED, fields)

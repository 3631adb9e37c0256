"""The verbs of the process that runs a job, each one transaction fenced by its lease.

`RunJournal(journal, job_id, lease)` is what a runner holds. Every verb first checks, inside its
transaction, that the lease still holds the job's key (else `LeaseLostError`, and nothing is
written), then checks the item's transition. A cancel that is committed wins over anything a
runner does next: `start_attempt` and `retry_later` turn an item with a cancel request into
`cancelled` instead, so no new attempt starts after a cancel.
"""

from __future__ import annotations

from typing import Any, Literal

from ..events import (
    ItemCancelled,
    ItemFailed,
    ItemReset,
    ItemRetrying,
    ItemStarted,
    JobConcurrency,
    JobFinished,
    JobInterrupted,
    JobStarted,
)
from ..locks import LockOwner, lock_slot
from ..records import ErrorInfo, ItemRecord, JobRecord, JobSnapshot
from ..states import ITEM_TERMINAL, ItemStatus
from .budget import MAYBE_BILLED, WAIT_FOR_BUDGET, over_budget, released
from .commit import Change, attempt_ended, attempt_started
from .disk import DiskJournal
from .fence import LeaseCheck, carries_token
from .images import ProcessedImage, RawImage, completed, generated
from .recovery import recovered

__all__ = ["ProcessedImage", "RawImage", "RunJournal"]

_STOPPABLE = frozenset({ItemStatus.PENDING, ItemStatus.RUNNING})


class RunJournal:
    """One job's runner verbs, carrying its lease."""

    def __init__(self, journal: DiskJournal, job_id: str, lease: LockOwner) -> None:
        self.journal = journal
        self.store = journal.store
        self.job_id = job_id
        self.lease = lease

    def start(self) -> JobSnapshot:
        """Begin a run. Items a dead process left running go back to pending, or end (see
        `recovery`); an image already received stays recorded, so it is only post-processed."""
        with self.store.writing():
            job = self._job()
            items = self.store.items(job)  # read once: 10,000 items take 0.1 s to read
            changes = [
                recovered(item, self.journal._now(), stopping=job.stopping)
                for item in items
                if item.status == ItemStatus.RUNNING
            ]
            back = sum(1 for change in changes if change.to == ItemStatus.PENDING)
            done = self.journal._commit(
                job,
                changes,
                job_fields={
                    "active": True,
                    "stopping": False,
                    "run_started_at": self.journal._now(),
                },
                job_event=(JobStarted, {"recovered": back}),
            )
            changed = {item.id: item for item in done.items}
            items = [changed.get(item.id, item) for item in items]
            snapshot = JobSnapshot(done.job, items, self.store.last_seq())
        self.journal._published(done.events)
        return snapshot

    def start_attempt(
        self, item_id: str, reserve_usd: float | None = None
    ) -> ItemRecord | Literal["wait"] | None:
        """Pending -> running with a new attempt that reserves `reserve_usd` of the job's budget;
        None if the item is no longer pending or was cancelled instead (a cancel asked for it
        or its job), or failed for lack of budget; `"wait"` when the budget has room only once
        attempts in flight end (nothing is written then)."""
        return self._start(item_id, with_attempt=True, reserve_usd=reserve_usd)

    def start_postprocess(self, item_id: str) -> ItemRecord | None:
        """Pending -> running for an item whose paid image is recorded: no new attempt."""
        started = self._start(item_id, with_attempt=False)
        assert started != WAIT_FOR_BUDGET
        return started

    def _start(
        self, item_id: str, *, with_attempt: bool, reserve_usd: float | None = None
    ) -> ItemRecord | Literal["wait"] | None:
        with self.store.writing():
            job, item = self._view(item_id)
            if item.status != ItemStatus.PENDING:
                return None
            over = over_budget(job, reserve_usd) if with_attempt else None
            if job.cancel_requested or job.cancelled or item.cancel_requested:
                change = Change(item, ItemCancelled, ItemStatus.CANCELLED, {"retry_at": None})
            elif over == WAIT_FOR_BUDGET:
                return WAIT_FOR_BUDGET
            elif over is not None:
                failed: dict[str, Any] = {"error": over, "retry_at": None}
                said: dict[str, Any] = {"kind": over.kind, "message": over.message}
                change = Change(item, ItemFailed, ItemStatus.FAILED, failed, said)
            elif with_attempt:
                attempts = attempt_started(item, self.journal._now())
                payload: dict[str, Any] = {"attempt": len(attempts), "retry": attempts[-1].retry}
                fields: dict[str, Any] = {
                    "attempts": attempts,
                    "retry_at": None,
                    "reserved_usd": reserve_usd or 0.0,
                }
                change = Change(item, ItemStarted, ItemStatus.RUNNING, fields, payload)
            else:
                change = Change(item, ItemStarted, ItemStatus.RUNNING, {"retry_at": None})
            done = self.journal._commit(job, [change])
        self.journal._published(done.events)
        updated = done.items[0]
        return updated if updated.status == ItemStatus.RUNNING else None

    def record_image(
        self, item_id: str, image: RawImage, processed: ProcessedImage | None = None
    ) -> ItemRecord:
        """The paid image is on disk: close the attempt as ok and keep where the image is. A
        result-cache hit has no attempt to close: it is recorded with what paid for it. With
        `processed` (a small image, post-processed at once) the item completes in the same
        transaction, and both events are published."""
        with self.store.writing():
            job, item = self._view(item_id)
            changes = [generated(item, image, self.journal._now())]
            if processed is not None and item.status not in ITEM_TERMINAL:
                changes.append(completed(item, processed))
            done = self.journal._commit(job, changes)
        self.journal._published(done.events)
        return done.items[-1]

    def complete(self, item_id: str, processed: ProcessedImage) -> ItemRecord:
        """Running -> completed, with the processed image's paths. An item that a cancel ended
        meanwhile stays as it is (its paid image is recorded all the same)."""
        with self.store.writing():
            job, item = self._view(item_id)
            if item.status in ITEM_TERMINAL:
                return item
            done = self.journal._commit(job, [completed(item, processed)])
        self.journal._published(done.events)
        return done.items[0]

    def retry_later(
        self, item_id: str, error: ErrorInfo, delay_s: float, retry_after: float | None
    ) -> ItemRecord:
        """Running -> pending after a failed attempt, to go again in `delay_s`; cancelled
        instead if a cancel was asked meanwhile. An item a request already cancelled (at once,
        while no live runner was seen) is left as it is."""
        now = self.journal._now()
        with self.store.writing():
            job, item = self._view(item_id)
            if item.status in ITEM_TERMINAL:  # cancelled at once meanwhile: it stays so
                return item
            attempts = attempt_ended(item, now, "error", error, retry_after=retry_after)
            freed = released(item, maybe_billed=error.kind in MAYBE_BILLED)
            if job.cancel_requested or job.cancelled or item.cancel_requested:
                fields = {"attempts": attempts, "error": error, "retry_at": None, **freed}
                change = Change(item, ItemCancelled, ItemStatus.CANCELLED, fields)
            else:
                fields = {
                    "attempts": attempts,
                    "error": error,
                    "retry_at": now + delay_s,
                    **freed,
                }
                payload = {
                    "kind": error.kind,
                    "message": error.message,
                    "delay_s": round(delay_s, 3),
                    "retry_after": retry_after,
                }
                change = Change(item, ItemRetrying, ItemStatus.PENDING, fields, payload)
            done = self.journal._commit(job, [change])
        self.journal._published(done.events)
        return done.items[0]

    def fail(self, item_id: str, error: ErrorInfo) -> ItemRecord | None:
        """Pending or running -> failed, closing an open attempt; None if already finished."""
        now = self.journal._now()
        with self.store.writing():
            job, item = self._view(item_id)
            if item.status not in _STOPPABLE:
                return None
            fields = {
                "attempts": attempt_ended(item, now, "error", error),
                "error": error,
                "retry_at": None,
                **released(item, maybe_billed=error.kind in MAYBE_BILLED),
            }
            payload = {"kind": error.kind, "message": error.message}
            done = self.journal._commit(
                job, [Change(item, ItemFailed, ItemStatus.FAILED, fields, payload)]
            )
        self.journal._published(done.events)
        return done.items[0]

    def stop(self, item_id: str, *, cancelled: bool) -> ItemRecord | None:
        """This run stops the item: running -> pending (an interrupt: the job stays resumable)
        or pending|running -> cancelled. The open attempt is closed accordingly."""
        now = self.journal._now()
        with self.store.writing():
            job, item = self._view(item_id)
            freed = released(item, maybe_billed=True)  # stopped in flight: it may be billed
            if cancelled and item.status in _STOPPABLE:
                fields = {
                    "attempts": attempt_ended(item, now, "cancelled"),
                    "retry_at": None,
                    **freed,
                }
                change = Change(item, ItemCancelled, ItemStatus.CANCELLED, fields)
            elif not cancelled and item.status == ItemStatus.RUNNING:
                fields = {"attempts": attempt_ended(item, now, "interrupted"), **freed}
                payload = {"reason": "interrupted"}
                change = Change(item, ItemReset, ItemStatus.PENDING, fields, payload)
            else:
                return None
            done = self.journal._commit(job, [change])
        self.journal._published(done.events)
        return done.items[0]

    def finish(
        self, run_s: float, *, interrupted: bool, reason: str = "interrupted"
    ) -> JobRecord | None:
        """End the run: the job is no longer active and `run_s` is added to its run time. A run
        that ends normally while items wait in pending (retried meanwhile) does not end: None.
        An interrupted run that left nothing unfinished (a wind-down whose last calls were the
        job's last images) finished the job: it says so, not "interrupted"."""
        with self.store.writing():
            job = self._job()
            pending = job.count(ItemStatus.PENDING)
            if not interrupted and pending:
                return None
            counts = {str(status): n for status, n in job.counts.items()}
            total = job.run_s + max(0.0, run_s)
            payload: dict[str, Any] = {"counts": counts, "run_s": round(total, 3)}
            event: Any = JobFinished
            if interrupted and pending + job.count(ItemStatus.RUNNING):
                event, payload["reason"] = JobInterrupted, reason
            fields = {"active": False, "stopping": False, "run_s": total}
            done = self.journal._commit(job, [], job_fields=fields, job_event=(event, payload))
        self.journal._published(done.events)
        return done.job

    def record_stopping(self) -> JobRecord:
        """This run is winding down (see `JobRecord.stopping`); nothing is written once it has
        finished."""
        with self.store.writing():
            job = self._job()
            if not job.active or job.stopping:
                return job
            done = self.journal._commit(job, [], job_fields={"stopping": True})
        return done.job

    def record_concurrency(self, limit: int) -> JobRecord:
        """The job's adaptive concurrency limit is now `limit`: kept on the job, with an event.
        Nothing is written once the run has finished (no event after the job's last)."""
        with self.store.writing():
            job = self._job()
            if not job.active:
                return job
            fields, event = {"concurrency": limit}, (JobConcurrency, {"limit": limit})
            done = self.journal._commit(job, [], job_fields=fields, job_event=event)
        self.journal._published(done.events)
        return done.job

    def check_lease(self) -> None:
        """Raise `LeaseLostError` unless this run still holds its job's key (a read). The
        lock's token is compared as text is read, as `_view` does: the job is only read, and
        the lock parsed, to say who holds it when it is lost."""
        if not self._holds(self.store.meta_text(lock_slot(self.lease.key))):
            self._job()

    def _job(self) -> JobRecord:
        job = self.store.job(self.job_id)
        self.journal.fence(job, self.lease)
        return job

    def _view(self, item_id: str) -> tuple[JobRecord, ItemRecord]:
        """The job and one of its items, read in one statement, the lease checked: the lock's
        token is compared as text is read; only a mismatch parses the lock (to say who has it)."""
        slot = lock_slot(self.lease.key)
        job, lock, item = self.store.run_view(self.job_id, slot, item_id)
        if not self._holds(lock):
            self.journal.fence(job, self.lease)  # raises LeaseLostError naming the new holder
        assert item is not None  # run_view raises NotFoundError for an unknown item
        return job, item

    def _holds(self, lock: str | None) -> bool:
        """Whether the lock's text (as stored) carries this run's token."""
        return carries_token(lock, self.lease.token)

    def lease_check(self) -> LeaseCheck:
        """What another process needs to check this run's lease (see `fence`)."""
        return LeaseCheck(self.store.path, lock_slot(self.lease.key), self.lease.token)

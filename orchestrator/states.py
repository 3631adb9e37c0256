"""The state machine of jobs and items: statuses, transitions, derived job status. Pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from .errors import TransitionError

__all__ = [
    "ITEM_ACTIVE",
    "ITEM_TERMINAL",
    "ITEM_TRANSITIONS",
    "JOB_TERMINAL",
    "ItemStatus",
    "JobStatus",
    "check_transition",
    "derive_job_status",
]


class ItemStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"


ITEM_ACTIVE = frozenset({ItemStatus.PENDING, ItemStatus.RUNNING})
ITEM_TERMINAL = frozenset({ItemStatus.COMPLETED, ItemStatus.FAILED, ItemStatus.CANCELLED})
JOB_TERMINAL = frozenset(
    {JobStatus.COMPLETED, JobStatus.PARTIAL, JobStatus.FAILED, JobStatus.CANCELLED}
)

ITEM_TRANSITIONS: Mapping[ItemStatus, frozenset[ItemStatus]] = {
    # pending -> failed: a dependency failed or the provider refused the job before any call.
    ItemStatus.PENDING: frozenset({ItemStatus.RUNNING, ItemStatus.CANCELLED, ItemStatus.FAILED}),
    # running -> pending: an attempt failed and another is allowed, or the process was stopped.
    ItemStatus.RUNNING: frozenset(
        {ItemStatus.PENDING, ItemStatus.COMPLETED, ItemStatus.FAILED, ItemStatus.CANCELLED}
    ),
    ItemStatus.COMPLETED: frozenset(),
    # failed|cancelled -> pending: an explicit retry.
    ItemStatus.FAILED: frozenset({ItemStatus.PENDING}),
    ItemStatus.CANCELLED: frozenset({ItemStatus.PENDING}),
}


def check_transition(current: ItemStatus, target: ItemStatus) -> None:
    """Raise `TransitionError` unless `current -> target` is in the transition table."""
    if target not in ITEM_TRANSITIONS[current]:
        raise TransitionError(f"item cannot go from {current} to {target}")


def derive_job_status(
    counts: Mapping[ItemStatus, int], *, active: bool, cancelled: bool = False
) -> JobStatus:
    """The job's status from how many items are in each status.

    `active` says whether a runner is working on the job: unfinished items make the job
    `running` while one is, and `pending` (resumable) when none is. `cancelled` says the user
    cancelled the job: once nothing is unfinished it is `cancelled`, whatever finished before.
    """
    completed = counts.get(ItemStatus.COMPLETED, 0)
    failed = counts.get(ItemStatus.FAILED, 0)
    stopped = counts.get(ItemStatus.CANCELLED, 0)
    unfinished = counts.get(ItemStatus.PENDING, 0) + counts.get(ItemStatus.RUNNING, 0)
    if unfinished:
        if active or counts.get(ItemStatus.RUNNING, 0):
            return JobStatus.RUNNING
        return JobStatus.PENDING
    if cancelled and stopped:
        return JobStatus.CANCELLED
    if completed and not (failed or stopped):
        return JobStatus.COMPLETED
    if completed:
        return JobStatus.PARTIAL
    if stopped:
        return JobStatus.CANCELLED
    if failed:
        return JobStatus.FAILED
    return JobStatus.COMPLETED  # a job with no items has nothing left to do

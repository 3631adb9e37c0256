"""One line of the job screen's log per event worth reading (starts of first attempts and
received images are left out: the table shows those)."""

from __future__ import annotations

import time

from orchestrator import Event
from orchestrator.events import (
    ItemCancelled,
    ItemCompleted,
    ItemFailed,
    ItemReset,
    ItemRetrying,
    ItemStarted,
    JobCancelRequested,
    JobCreated,
    JobFinished,
    JobInterrupted,
    JobStarted,
)

from .formats import format_duration, reason

__all__ = ["event_line"]

INTERRUPTIONS = {
    "interrupted": "interrupted (resumable)",
    "error": "stopped by an error (resumable)",
    "lease_lost": "stopped: another process took its lock over",
}


def event_line(event: Event) -> str:
    """`12:03:04 page-02 retrying in 1.5s: the provider had a server error`, or "" to skip."""
    text = _job_text(event) if event.item_id is None else _item_text(event)
    if not text:
        return ""
    return f"{time.strftime('%H:%M:%S', time.localtime(event.ts))} {text}"


def _job_text(event: Event) -> str:
    match event:
        case JobCreated(total=total):
            return f"job created with {total} images"
        case JobStarted(recovered=recovered):
            return "job started" + (f" ({recovered} interrupted images again)" if recovered else "")
        case JobFinished(status=status, run_s=run_s):
            return f"job finished: {status} after {format_duration(run_s)} of work"
        case JobInterrupted(reason=why):
            return f"job {INTERRUPTIONS[why]}"
        case JobCancelRequested(item_ids=ids):
            return f"cancel requested for {', '.join(ids) if ids else 'the job'}"
    return ""


def _item_text(event: Event) -> str:
    item = event.item_id
    match event:
        case ItemStarted(attempt=attempt) if attempt > 1:
            return f"{item} attempt {attempt}"
        case ItemRetrying(kind=kind, message=message, delay_s=delay):
            return f"{item} retrying in {delay:.1f}s: {reason(kind)} ({message})"
        case ItemCompleted():
            return f"{item} completed"
        case ItemFailed(kind=kind, message=message):
            return f"{item} failed: {reason(kind)} ({message})"
        case ItemCancelled():
            return f"{item} cancelled"
        case ItemReset(reason=why):
            return f"{item} back to pending ({'retry' if why == 'retry' else 'interrupted'})"
    return ""

"""How every front end words a job: durations, costs, error reasons, and one log line per event
worth reading (starts of first attempts and received images are left out: the tables and grids
show those). The CLI, the TUI and the notebook widgets all read the same words from here."""

from __future__ import annotations

import time

from .events import (
    Event,
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

__all__ = ["REASONS", "event_line", "format_cost", "format_duration", "format_latency", "reason"]

REASONS: dict[str, str] = {
    "rate_limited": "rate limited",
    "unavailable": "server error",
    "timeout": "timed out",
    "bad_response": "not an image",
    "content_rejected": "refused: moderation",
    "invalid_request": "request refused",
    "auth": "API key refused",
    "interrupted": "process stopped",
    "postprocess": "post-process failed",
}

INTERRUPTIONS = {
    "interrupted": "interrupted (resumable)",
    "error": "stopped by an error (resumable)",
    "lease_lost": "stopped: another process took its lock over",
}


def format_duration(seconds: float) -> str:
    """`9.8s`, `2m05s`, `1h02m`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_cost(cost: float, unpriced: int = 0) -> str:
    """`$0.42`, or `$0.42+` when some images have no known price."""
    if cost == 0 and unpriced:
        return "cost unknown"
    text = f"${cost:.2f}" if cost >= 0.01 or cost == 0 else f"${cost:.4f}"
    return text + ("+" if unpriced else "")


def format_latency(seconds: float | None) -> str:
    """An attempt's time, `1.23s`; a dash when there is none."""
    return "-" if seconds is None else f"{seconds:.2f}s"


def reason(kind: str | None) -> str:
    """An error kind in a few words (`unavailable` -> `server error`)."""
    if not kind:
        return ""
    return REASONS.get(kind, kind.replace("_", " "))


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

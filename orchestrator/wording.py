"""How every front end words a job: durations, costs, error reasons, and one log line per event
worth reading (starts of first attempts and received images are left out: the tables and grids
show those). The CLI, the TUI and the notebook widgets all read the same words from here."""

from __future__ import annotations

import math
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
    JobConcurrency,
    JobCreated,
    JobFinished,
    JobInterrupted,
    JobStarted,
    JobStopRequested,
)
from .states import ItemStatus
from .tally import Tally

__all__ = [
    "REASONS",
    "STOP_REQUESTED",
    "concurrency_text",
    "counts_line",
    "event_line",
    "format_cost",
    "format_duration",
    "format_latency",
    "format_usd",
    "from_cache_text",
    "pace_line",
    "provider_down_text",
    "reason",
    "requests_under_way",
    "stop_answer",
]

STOP_REQUESTED = "stop requested: the requests under way finish, no new one starts"
"""What a front end says when a run is asked to wind down (`imagebatch stop`)."""
NOTHING_TO_STOP = "no process is running the job: nothing to stop"


def stop_answer(asked: bool) -> str:
    """What a front end says once it asked a job's run to stop (`JobHandle.stop`): `asked` is
    False when no process was running the job."""
    return f"{STOP_REQUESTED}; the job stays resumable" if asked else NOTHING_TO_STOP


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
    "budget": "over budget",
    "reference": "reference failed",
    "unusable_file": "reference unusable",
    "crash_loop": "crashed the process",
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


def format_usd(amount: float) -> str:
    """An amount as set, to the cent or finer: `$1.00`, `$0.025`, `$0.0042`."""
    if round(amount, 2) == round(amount, 6):
        return f"${amount:.2f}"
    return f"${amount:.4f}".rstrip("0")


def format_latency(seconds: float | None) -> str:
    """An attempt's time, `1.23s`; a dash when there is none."""
    return "-" if seconds is None else f"{seconds:.2f}s"


def reason(kind: str | None) -> str:
    """An error kind in a few words (`unavailable` -> `server error`)."""
    if not kind:
        return ""
    return REASONS.get(kind, kind.replace("_", " "))


def requests_under_way(calls: int) -> str:
    """`the 3 requests under way` (`the request under way` for one), as a wind-down says."""
    return f"the {calls} requests under way" if calls > 1 else "the request under way"


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
        case JobStopRequested():
            return STOP_REQUESTED
        case JobConcurrency(limit=limit):
            return f"concurrency now {limit} (auto)"
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


def concurrency_text(limit: int | None, maximum: int) -> str:
    """An adaptive job's limit: `concurrency 8 (auto, at most 32)`, or `concurrency auto (at
    most 32)` before its runner has recorded one."""
    if limit is None:
        return f"concurrency auto (at most {maximum})"
    return f"concurrency {limit} (auto, at most {maximum})"


def counts_line(tally: Tally, now: float, *, stopped: bool = False) -> str:
    """`8 completed · 3 running · 1 saving · 2 waiting · 1 failed · 4 retries`, and an
    adaptive job's limit after the running ones (`concurrency 8 (auto, at most 32)`). Once
    the run `stopped`, the ones in flight were `interrupted` (a resume takes them up)."""
    flying = len(tally.in_flight)
    parts = [
        f"{tally.count(ItemStatus.COMPLETED)} completed{from_cache_text(tally)}",
        f"{flying} interrupted" if stopped else f"{flying} running",
    ]
    if tally.max_concurrency is not None:
        parts.append(concurrency_text(tally.concurrency, tally.max_concurrency))
    optional = (
        (tally.saving, "saving"),
        (tally.count(ItemStatus.PENDING), "pending"),
        (tally.waiting(now), "waiting to retry"),
        (tally.count(ItemStatus.FAILED), "failed"),
        (tally.count(ItemStatus.CANCELLED), "cancelled"),
        (tally.retries, "retries"),
    )
    parts += [f"{count} {label}" for count, label in optional if count]
    return " · ".join(parts)


def from_cache_text(tally: Tally) -> str:
    """` (3 from the cache)` when some completed images cost nothing, else nothing."""
    hits = tally.from_cache()
    return f" ({hits} from the cache)" if hits else ""


def pace_line(tally: Tally, now: float, *, stopped: bool = False) -> str:
    """`12.0 images/min · ETA 1m05s · cost $0.42 of a $1.00 budget`, and why nothing moves
    when something waits; no ETA once the run `stopped` (or was interrupted) unfinished."""
    rate = tally.images_per_minute(now)
    eta = tally.eta_s(now)
    stopped = stopped or tally.finished
    parts = [
        f"{rate:.1f} images/min" if rate is not None else "images/min: -",
        "all done"
        if tally.done == tally.total
        else ("stopped: resume to go on" if stopped else f"ETA {_eta(eta)}"),
        f"cost {format_cost(tally.cost_usd, tally.unpriced)}"
        + (f" of a {format_usd(tally.budget_usd)} budget" if tally.budget_usd is not None else ""),
    ]
    limit = tally.rate_limit_wait(now)
    if limit > 0:
        parts.append(f"waiting {math.ceil(limit)}s for the provider's rate limit")
    elif tally.provider_down and not stopped:  # the rows say why
        parts.append(provider_down_text(tally, why=False))
    return " · ".join(parts)


def provider_down_text(tally: Tally, *, why: bool = True) -> str:
    """`the provider looks down (openai: connection failed): trying it now and then`."""
    said = f" ({tally.down_reason})" if why and tally.down_reason else ""
    return f"the provider looks down{said}: trying it now and then"


def _eta(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)

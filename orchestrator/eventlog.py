"""A job's events as log lines, through the standard `logging` module (logger `imagebatch`).

One timed line per job event (started, finished, interrupted) and one per attempt when it ends
(`ok`, `error` with a retry, `failed`, `cancelled`, `interrupted`), naming the job, the item,
the attempt, the outcome and how long the attempt took. Attempt starts are logged at DEBUG
only. The lines hold what the events hold: ids, counts, error kinds and their messages, which
the providers have already cleaned of keys; never a request, a header or a key.

`EventLog` is fed by a front end that follows a job (the CLI does, for `-v` and `--log-file`):
`load` the snapshot it started from, then `handle` each event. No I/O of its own beyond the
logger; configuring handlers is the front end's business.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from .events import (
    Event,
    ItemCancelled,
    ItemCompleted,
    ItemFailed,
    ItemGenerated,
    ItemReset,
    ItemRetrying,
    ItemStarted,
    JobConcurrency,
    JobFinished,
    JobInterrupted,
    JobStarted,
    JobStopRequested,
)
from .records import JobSnapshot

__all__ = ["LOGGER", "EventLog"]

LOGGER = logging.getLogger("imagebatch")
LOGGER.addHandler(logging.NullHandler())  # nothing printed unless the application asks


@dataclass
class EventLog:
    """Logs one job's (or several jobs') events; remembers when each attempt started."""

    logger: logging.Logger = LOGGER
    _started: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)

    def load(self, snapshot: JobSnapshot) -> None:
        """Attempts already running when the following began: their end has a known time."""
        for item in snapshot.items:
            last = item.attempts[-1] if item.attempts else None
            if last is not None and last.outcome == "running":
                self._started[item.job_id, item.id] = (last.number, last.started_at)

    def handle(self, event: Event) -> None:
        """Log the event, if it is one worth a line."""
        if event.item_id is None:
            self._job(event)
        else:
            self._item(event, event.item_id)

    def _job(self, event: Event) -> None:
        match event:
            case JobStarted(recovered=recovered):
                again = f" ({recovered} items taken up again)" if recovered else ""
                self.logger.info("job %s started%s", event.job_id, again)
            case JobFinished(counts=counts, run_s=run_s):
                self.logger.info(
                    "job %s finished %s in %.2fs: %s", event.job_id, event.status, run_s,
                    _counts(counts),
                )  # fmt: skip
            case JobInterrupted(reason=reason, run_s=run_s):
                self.logger.warning("job %s stopped (%s) after %.2fs", event.job_id, reason, run_s)
            case JobConcurrency(limit=limit):
                self.logger.info("job %s concurrency now %d (auto)", event.job_id, limit)
            case JobStopRequested():
                self.logger.info("job %s stop requested", event.job_id)

    def _item(self, event: Event, item_id: str) -> None:
        key = (event.job_id, item_id)
        match event:
            case ItemStarted(attempt=attempt, retry=retry) if attempt:
                self._started[key] = (attempt, event.ts)
                how = " (automatic retry)" if retry else ""
                self._line(logging.DEBUG, event, item_id, attempt, f"started{how}")
            case ItemGenerated(cached=True):
                self.logger.info("job %s item %s from the result cache (no call)", *key)
            case ItemGenerated(cost_usd=cost):
                self._ended(event, item_id, "ok", "" if cost is None else f", ${cost:.4f}")
            case ItemRetrying(kind=kind, message=message, delay_s=delay):
                self._ended(event, item_id, f"error {kind}", f": {message}; retry in {delay:.2f}s")
            case ItemFailed(kind=kind, message=message):
                self._ended(event, item_id, f"failed {kind}", f": {message}")
            case ItemCancelled():
                self._ended(event, item_id, "cancelled")
            case ItemReset(reason="interrupted"):
                self._ended(event, item_id, "interrupted")
            case ItemCompleted(image_path=path):
                self.logger.info("job %s item %s completed: %s", event.job_id, item_id, path)

    def _ended(self, event: Event, item_id: str, outcome: str, detail: str = "") -> None:
        """The line of an attempt's end: outcome, time taken, detail. An item that ends with no
        attempt of its own (the key was refused earlier, a cancel while it waited) gets a line
        without one."""
        started = self._started.pop((event.job_id, item_id), None)
        if started is None:
            if isinstance(event, ItemFailed | ItemCancelled):
                self.logger.info("job %s item %s %s%s", event.job_id, item_id, outcome, detail)
            return
        attempt, at = started
        took = f" in {max(0.0, event.ts - at):.2f}s"
        self._line(logging.INFO, event, item_id, attempt, f"{outcome}{took}{detail}")

    def _line(self, level: int, event: Event, item_id: str, attempt: int, text: str) -> None:
        self.logger.log(level, "job %s item %s attempt %d %s", event.job_id, item_id, attempt, text)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "no items"

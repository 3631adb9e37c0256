"""A job's events turned into the webhook messages its spec asks for. Pure: the time is passed in.

```
JobStarted     -> job.started      {job_id, status, recovered}
ItemCompleted  -> item.completed   {job_id, item_id, status, image_path, cost_usd}
ItemFailed     -> item.failed      {job_id, item_id, status, error: {kind, message}}
item ends      -> job.progress     {job_id, total, done, counts, cost_usd}  at most once a second
JobFinished    -> job.finished     {job_id, status, counts, run_s, cost_usd}
```

Each body is `{"type", "timestamp", "data"}` (the Standard Webhooks payload shape), with the
event's commit time as an ISO 8601 UTC timestamp. A message's id is made from the job and the
event's sequence number, so the same event always has the same `webhook-id`, also when it is
sent again by a later run. `job.progress` goes out after an item ends, unless one went out less
than `progress_every_s` ago; `job.finished` carries the final counts either way.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..events import (
    Event,
    ItemCancelled,
    ItemCompleted,
    ItemFailed,
    ItemGenerated,
    JobFinished,
    JobStarted,
)
from ..records import JobSnapshot
from ..tally import Tally
from .models import WebhookEventType, WebhookMessage, WebhookSpec

__all__ = ["MessageMaker"]


class MessageMaker:
    """Makes one job's webhook messages from its events, in order."""

    def __init__(
        self,
        spec: WebhookSpec,
        tally: Tally,
        *,
        images_root: Path,
        progress_every_s: float = 1.0,
    ) -> None:
        self.spec = spec
        self.tally = tally
        """The job's numbers, for progress and the cost; fed every event given here."""
        self.images_root = images_root
        """Where relative image paths start (the workspace), so receivers get absolute ones."""
        self.progress_every_s = progress_every_s
        self._last_progress: float | None = None
        self.total = tally.total
        """Items in the job."""
        self._costs: dict[str, float | None] = {}
        """What each item's image cost, where known (for `item.completed`)."""

    @classmethod
    def from_snapshot(
        cls,
        spec: WebhookSpec,
        snapshot: JobSnapshot,
        *,
        images_root: Path,
        now: float,
        progress_every_s: float = 1.0,
    ) -> MessageMaker:
        """A maker for the job as `snapshot` saw it; give it the events after `snapshot.seq`."""
        job, items = snapshot.job, snapshot.items
        tally = Tally.from_snapshot(job, items, now=now, seq=snapshot.seq)
        maker = cls(spec, tally, images_root=images_root, progress_every_s=progress_every_s)
        maker.total = job.total
        maker._costs = {item.id: item.cost_usd for item in items}
        return maker

    def messages(self, event: Event, now: float) -> list[WebhookMessage]:
        """The messages `event` makes (often none); `now` is a monotonic time in seconds. Another
        job's event, and one seen before (by seq), make none."""
        if event.job_id != self.tally.job_id or event.seq <= self.tally.last_seq:
            return []
        self.tally.apply(event)
        if isinstance(event, ItemGenerated) and event.item_id is not None:
            self._costs[event.item_id] = event.cost_usd
        made: list[WebhookMessage] = []
        main = self._main(event)
        if main is not None:
            made.append(self._message(event, *main))
        if isinstance(event, ItemCompleted | ItemFailed | ItemCancelled) and self._progress_due(
            now
        ):
            made.append(self._message(event, "job.progress", self._progress()))
        return [message for message in made if message.type in self.spec.events]

    def _main(self, event: Event) -> tuple[WebhookEventType, dict[str, Any]] | None:
        base: dict[str, Any] = {"job_id": event.job_id, "status": event.status}
        match event:
            case JobStarted(recovered=recovered):
                return "job.started", {**base, "recovered": recovered}
            case ItemCompleted(item_id=item_id, image_path=path):
                image = str(self.images_root / path)
                cost = self._costs.get(item_id or "")
                return "item.completed", {
                    **base,
                    "item_id": item_id,
                    "image_path": image,
                    "cost_usd": cost,
                }
            case ItemFailed(item_id=item_id, kind=kind, message=text):
                error = {"kind": kind, "message": text}
                return "item.failed", {**base, "item_id": item_id, "error": error}
            case JobFinished(counts=counts, run_s=run_s):
                return "job.finished", {
                    **base,
                    "counts": counts,
                    "run_s": run_s,
                    "cost_usd": round(self.tally.cost_usd, 6),
                }
        return None

    def _progress_due(self, now: float) -> bool:
        if self._last_progress is not None and now - self._last_progress < self.progress_every_s:
            return False
        self._last_progress = now
        return True

    def _progress(self) -> dict[str, Any]:
        tally = self.tally
        return {
            "job_id": tally.job_id,
            "total": self.total,
            "done": tally.done,
            "counts": {str(status): n for status, n in sorted(tally.counts.items())},
            "cost_usd": round(tally.cost_usd, 6),
        }

    def _message(
        self, event: Event, kind: WebhookEventType, data: dict[str, Any]
    ) -> WebhookMessage:
        suffix = "-progress" if kind == "job.progress" else ""
        body = {"type": kind, "timestamp": _iso(event.ts), "data": data}
        return WebhookMessage(
            id=f"msg_{event.job_id}_{event.seq}{suffix}",
            type=kind,
            body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")

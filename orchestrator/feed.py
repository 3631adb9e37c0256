"""A job's live state for a front end: one row per image, the `Tally`, the log lines.

A front end (the TUI's job screen, the notebook's grid) reads a snapshot (`load`), then hands
over the job's events one at a time (`apply`), and takes what changed since it last looked
(`take`) whenever it redraws. Events arrive far faster than anyone can read, so changes pile up
here and are drawn together: each row at most once per redraw, whatever happened to it in
between. Pure: no I/O, no front-end library.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from .events import (
    Event,
    ItemCancelled,
    ItemCompleted,
    ItemFailed,
    ItemGenerated,
    ItemReset,
    ItemRetrying,
    ItemStarted,
    JobFinished,
    JobInterrupted,
)
from .records import ItemRecord, JobSnapshot
from .states import ItemStatus
from .tally import Tally
from .wording import event_line, format_latency, reason

__all__ = ["Changes", "ItemRow", "JobFeed"]


@dataclass(frozen=True)
class ItemRow:
    """What the table shows of one image."""

    id: str
    index: int
    status: ItemStatus
    attempts: int = 0
    latency_s: float | None = None
    """How long the latest attempt took (or takes so far, once it ends)."""
    error_kind: str = ""
    error: str = ""
    cost_usd: float | None = None
    cached: bool = False
    """The image came without a paid call of its own (a result-cache hit)."""
    waits_for: tuple[str, ...] = ()
    """The items it references: while pending, it waits for them."""

    @classmethod
    def of(cls, item: ItemRecord) -> ItemRow:
        last = item.attempts[-1] if item.attempts else None
        latency = None
        if last is not None and last.ended_at is not None:
            latency = last.ended_at - last.started_at
        paid = any(attempt.outcome == "ok" for attempt in item.attempts)
        return cls(
            id=item.id,
            index=item.index,
            status=item.status,
            attempts=item.attempt_count,
            latency_s=latency,
            error_kind=item.error.kind if item.error else "",
            error=item.error.message if item.error else "",
            cost_usd=item.cost_usd,
            cached=item.cached_from is not None
            or (item.status == ItemStatus.COMPLETED and not paid),
            waits_for=item.depends_on,
        )

    @property
    def note(self) -> str:
        """Why it failed in words, or what it waits for while pending."""
        if self.error_kind:
            return reason(self.error_kind)
        if self.status == ItemStatus.PENDING and self.waits_for:
            return f"after {', '.join(self.waits_for)}"
        return ""

    def cells(self) -> tuple[str, ...]:
        """The row's texts, in the table's column order (the status is coloured there)."""
        cost = "-" if self.cost_usd is None else f"${self.cost_usd:.3f}"
        return (
            self.id,
            str(self.status),
            str(self.attempts),
            format_latency(self.latency_s),
            self.note,
            cost,
            "yes" if self.cached else "",
        )


@dataclass
class Changes:
    """What changed since the screen last drew."""

    rows: list[ItemRow]
    lines: list[str]
    reloaded: bool
    """Every row may have changed (a new snapshot): redraw the table whole."""


@dataclass
class JobFeed:
    """One job's rows, records, tally and pending log lines."""

    job_id: str
    rows: dict[str, ItemRow] = field(default_factory=dict)
    records: dict[str, ItemRecord] = field(default_factory=dict)
    tally: Tally | None = None
    job_status: str = "loading"
    _dirty: dict[str, None] = field(default_factory=dict)
    _lines: list[str] = field(default_factory=list)
    _reloaded: bool = False
    _started: dict[str, float] = field(default_factory=dict)

    def load(self, snapshot: JobSnapshot, now: float | None = None) -> None:
        """Start (again) from a snapshot; a tally already watching keeps its pace."""
        now = time.time() if now is None else now
        tally = Tally.from_snapshot(snapshot.job, snapshot.items, now=now, seq=snapshot.seq)
        if self.tally is not None:
            tally.since, tally.completed_at = self.tally.since, self.tally.completed_at
        self.tally = tally
        self.job_status = str(snapshot.job.status)
        self.records = {item.id: item for item in snapshot.items}
        self.rows = {item.id: ItemRow.of(item) for item in snapshot.items}
        self._started = {  # attempts in flight: their latency is known when they end
            item.id: item.attempts[-1].started_at
            for item in snapshot.items
            if item.attempts and item.attempts[-1].outcome == "running"
        }
        self._reloaded = True
        self._dirty.clear()

    def history(self, event: Event) -> None:
        """An event the snapshot already includes: only its log line."""
        line = event_line(event)
        if line:
            self._lines.append(line)

    def apply(self, event: Event) -> None:
        """An event after the snapshot: count it, update its row, log it."""
        if self.tally is None or event.seq <= self.tally.last_seq:
            return
        self.tally.apply(event)
        self.history(event)
        if event.item_id is None:
            self.job_status = event.status
        if event.item_id is not None and event.item_id in self.rows:
            row = self._updated(self.rows[event.item_id], event)
            if row != self.rows[event.item_id]:
                self.rows[event.item_id] = row
                self._dirty[row.id] = None

    def take(self) -> Changes:
        """What changed since the last call, and forget it."""
        changes = Changes(
            rows=[self.rows[item_id] for item_id in self._dirty],
            lines=self._lines,
            reloaded=self._reloaded,
        )
        self._dirty, self._lines, self._reloaded = {}, [], False
        return changes

    def refresh_records(self, items: list[ItemRecord]) -> None:
        """Newer records (image paths, final prompts); the rows stay as the events left them."""
        self.records = {item.id: item for item in items}

    def stale(self, item_id: str) -> bool:
        """The item's record is older than its row (its image or final prompt may be missing)."""
        record, row = self.records.get(item_id), self.rows.get(item_id)
        return record is None or row is None or record.status != row.status

    def ended(self, event: Event) -> bool:
        """The run ended with this event: time to read the final records."""
        return isinstance(event, JobFinished | JobInterrupted)

    def _updated(self, row: ItemRow, event: Event) -> ItemRow:
        status = ItemStatus(event.status)
        match event:
            case ItemStarted(attempt=attempt, ts=ts) if attempt:
                self._started[row.id] = ts
                return replace(row, status=status, attempts=attempt, latency_s=None)
            case ItemGenerated(ts=ts, cost_usd=cost, cached=cached):
                took = None if cached else self._took(row.id, ts)
                return replace(row, status=status, latency_s=took, cost_usd=cost, cached=cached)
            case (
                ItemRetrying(ts=ts, kind=kind, message=message)
                | ItemFailed(ts=ts, kind=kind, message=message)
            ):
                took = self._took(row.id, ts) or row.latency_s
                return replace(row, status=status, latency_s=took, error_kind=kind, error=message)
            case ItemCompleted() | ItemReset():
                return replace(row, status=status, error_kind="", error="")
            case ItemCancelled(ts=ts):
                latency = self._took(row.id, ts) or row.latency_s
                return replace(row, status=status, latency_s=latency)
        return replace(row, status=status)

    def _took(self, item_id: str, ts: float) -> float | None:
        started = self._started.pop(item_id, None)
        return None if started is None else max(0.0, ts - started)

"""The one reducer of a job's events into the numbers every display shows.

A `Tally` starts from a snapshot of the job and its items (`Tally.from_snapshot`) and then takes
the job's events in order (`apply`). The CLI's live line, its summary, the TUI and the notebook
widgets read the same numbers from it: counts by status, attempts, retries, cost so far, how many
images wait for a retry, how long the provider's rate limit holds them, images per minute, the
time left and an adaptive job's concurrency limit. An event it has already seen (by sequence
number) is ignored, so a follower that resynchronises from a snapshot and then replays the log
counts nothing twice. Pure: no I/O, and the time is always passed in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .breaker import Breaker
from .errors import RateLimitedError, UnavailableError
from .events import (
    Event,
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
)
from .records import ItemRecord, JobRecord
from .states import ITEM_TERMINAL, ItemStatus

__all__ = ["Failure", "Tally"]

BREAKER_AFTER = Breaker().after
"""Failures in a row after which a lane's breaker opens: then the provider looks down."""


@dataclass(frozen=True)
class Failure:
    """An item that ended failed, and why."""

    item_id: str
    kind: str
    message: str


@dataclass
class Tally:
    """Live numbers of one job."""

    job_id: str
    total: int
    statuses: dict[str, ItemStatus] = field(default_factory=dict)
    attempts: int = 0
    """Calls made to the provider."""
    retries: int = 0
    """Attempts started automatically after a failed one."""
    cost_usd: float = 0.0
    """What the images received so far cost, where the provider said."""
    unpriced: int = 0
    """Images received whose cost is unknown (so `cost_usd` is a lower bound)."""
    cached: set[str] = field(default_factory=set)
    """Items whose image came from the result cache: no call was made, nothing was paid."""
    retry_at: dict[str, float] = field(default_factory=dict)
    """Items waiting out a backoff, and when they may go again (wall-clock time)."""
    rate_limited_until: float = 0.0
    """When the provider's last rate-limit wait ends (wall-clock time)."""
    in_flight: set[str] = field(default_factory=set)
    """Items with a call at the provider now (a running item may instead be saving its image)."""
    failures: dict[str, Failure] = field(default_factory=dict)
    completed_at: list[float] = field(default_factory=list)
    """When items completed since `since`, for images per minute."""
    since: float = 0.0
    """When the job's current run started, if it runs; else when this tally started watching.
    A watcher that comes in late so sees the run's elapsed time and pace at once; a run that
    starts while it watches (a resume, a retry) starts them again."""
    last_seq: int = 0
    finished: bool = False
    """The runner reported the job's end (or an interrupt)."""
    budget_usd: float | None = None
    """The job's spending cap (`limits.budget_usd`), if it has one."""
    concurrency: int | None = None
    """An adaptive job's concurrency limit now (`concurrency: "auto"`); None until its runner
    records one, and for a fixed concurrency (the spec's)."""
    max_concurrency: int | None = None
    """An adaptive job's maximum concurrency; None for a fixed concurrency."""
    down_in_a_row: int = 0
    """Attempts in a row that failed as if the provider were down (a 5xx, a connection that
    failed), since it last answered (an image or a 429)."""
    down_reason: str = ""
    """The last of those failures, in words."""

    @classmethod
    def from_snapshot(
        cls, job: JobRecord, items: list[ItemRecord], *, now: float, seq: int = 0
    ) -> Tally:
        """The tally of `job` as its records stand; events up to `seq` are already in it."""
        limits = job.config.limits
        run_started = job.run_started_at if job.active else None
        since = now if run_started is None else min(run_started, now)
        tally = cls(
            job_id=job.id,
            total=len(items),
            since=since,
            last_seq=seq,
            budget_usd=limits.budget_usd,
            concurrency=job.concurrency if limits.adaptive else None,
            max_concurrency=limits.most_in_flight if limits.adaptive else None,
        )
        for item in items:
            tally._take_record(item)
        if job.active:  # a run is under way: what it meets now
            tally._take_outage(items)
        else:  # a run ended (or was stopped) before this tally: nothing waits, no ETA
            tally.finished = job.run_started_at is not None
        return tally

    def _take_outage(self, items: list[ItemRecord]) -> None:
        """How many of the last attempts failed as if the provider were down (see
        `provider_down`), counted back from the latest to its last answer."""
        ended = sorted(
            (attempt for item in items for attempt in item.attempts if attempt.ended_at),
            key=lambda attempt: attempt.ended_at or 0.0,
        )
        for attempt in reversed(ended):
            kind = attempt.error.kind if attempt.error is not None else None
            if attempt.outcome == "ok" or kind == RateLimitedError.kind:
                return
            if kind == UnavailableError.kind and attempt.error is not None:
                self.down_reason = self.down_reason or attempt.error.message
                self.down_in_a_row += 1

    def _take_record(self, item: ItemRecord) -> None:
        """Count one item as its record stands."""
        self.statuses[item.id] = item.status
        self.attempts += len(item.attempts)
        self.retries += sum(1 for attempt in item.attempts if attempt.retry)
        for attempt in item.attempts:
            if attempt.outcome == "ok":
                self._add_cost(attempt.cost_usd)
        if (
            item.status == ItemStatus.RUNNING
            and item.attempts[-1:]
            and (item.attempts[-1].outcome == "running")
        ):
            self.in_flight.add(item.id)
        if item.status == ItemStatus.PENDING and item.retry_at is not None:
            self.retry_at[item.id] = item.retry_at
        if item.cached_from is not None:
            self.cached.add(item.id)
        finished = item.finished_at
        if item.status == ItemStatus.COMPLETED and finished is not None and finished >= self.since:
            self.completed_at.append(finished)  # in this run, before the snapshot
        if item.status == ItemStatus.FAILED and item.error is not None:
            self.failures[item.id] = Failure(item.id, item.error.kind, item.error.message)

    # ------------------------------------------------------------------ reads

    @property
    def counts(self) -> Counter[ItemStatus]:
        return Counter(self.statuses.values())

    def count(self, status: ItemStatus) -> int:
        return sum(1 for value in self.statuses.values() if value == status)

    def from_cache(self) -> int:
        """Completed items whose image came from the result cache: nothing was paid for them."""
        return sum(1 for item in self.cached if self.statuses.get(item) == ItemStatus.COMPLETED)

    @property
    def done(self) -> int:
        """Items that reached an end: completed, failed or cancelled."""
        return sum(1 for value in self.statuses.values() if value in ITEM_TERMINAL)

    @property
    def saving(self) -> int:
        """Running items whose image has arrived and is being written or post-processed."""
        return self.count(ItemStatus.RUNNING) - len(self.in_flight)

    def waiting(self, now: float) -> int:
        """Items held back by a backoff or the provider's rate limit right now."""
        return sum(1 for when in self.retry_at.values() if when > now)

    @property
    def provider_down(self) -> bool:
        """The provider looks down, as the lane's circuit breaker judges it (`Breaker.after`
        such failures in a row): it is called only now and then until it answers again. Seen
        from this job's events alone."""
        return self.down_in_a_row >= BREAKER_AFTER

    def rate_limit_wait(self, now: float) -> float:
        """Seconds left of the provider's rate-limit wait; 0 when there is none."""
        return max(0.0, self.rate_limited_until - now)

    def images_per_minute(self, now: float) -> float | None:
        """Completions per minute while this tally watched; None before the first one."""
        if not self.completed_at:
            return None
        span = max(now - self.since, 1e-6)
        return 60.0 * len(self.completed_at) / span

    def eta_s(self, now: float) -> float | None:
        """Seconds until every item is done at the current pace; None while unknown."""
        rate = self.images_per_minute(now)
        left = self.total - self.done
        if left == 0:
            return 0.0
        if not rate:
            return None
        return 60.0 * left / rate

    # ----------------------------------------------------------------- writes

    def apply(self, event: Event) -> None:
        """Take one event of the job; other jobs' events and repeats are ignored."""
        if event.job_id != self.job_id or event.seq <= self.last_seq:
            return
        self.last_seq = event.seq
        if event.item_id is None:
            if isinstance(event, JobFinished | JobInterrupted):
                self.finished, self.down_in_a_row = True, 0
            elif isinstance(event, JobStarted):  # a new run: its own time and pace
                self.finished, self.since = False, event.ts
                self.completed_at.clear()
            elif isinstance(event, JobConcurrency):
                self.concurrency = event.limit
            return
        self._apply_item(event, event.item_id)

    def _apply_item(self, event: Event, item_id: str) -> None:
        self.statuses[item_id] = ItemStatus(event.status)
        if not isinstance(event, ItemRetrying):
            self.retry_at.pop(item_id, None)
        if not isinstance(event, ItemStarted):
            self.in_flight.discard(item_id)
        match event:
            case ItemStarted(attempt=attempt, retry=retry) if attempt:
                self.attempts += 1
                self.retries += retry
                self.in_flight.add(item_id)
            case ItemRetrying():
                self._retrying(event, item_id)
            case ItemGenerated():
                self._generated(event, item_id)
            case ItemCompleted(ts=ts):
                self.completed_at.append(ts)
            case ItemFailed(kind=kind, message=message):
                self.failures[item_id] = Failure(item_id, kind, message)
                self._attempt_failed(kind, message)
            case ItemReset():
                self.failures.pop(item_id, None)

    def _generated(self, event: ItemGenerated, item_id: str) -> None:
        self._add_cost(event.cost_usd)
        if event.cached:
            self.cached.add(item_id)
        else:  # the provider answered: it is up
            self.cached.discard(item_id)
            self.down_in_a_row = 0

    def _attempt_failed(self, kind: str, message: str) -> None:
        if kind == UnavailableError.kind:
            self.down_in_a_row, self.down_reason = self.down_in_a_row + 1, message
        elif kind == RateLimitedError.kind:  # an answer: the provider is up
            self.down_in_a_row = 0

    def _retrying(self, event: ItemRetrying, item_id: str) -> None:
        self._attempt_failed(event.kind, event.message)
        self.retry_at[item_id] = event.ts + event.delay_s
        if event.kind == "rate_limited":
            wait = event.delay_s if event.retry_after is None else event.retry_after
            self.rate_limited_until = max(self.rate_limited_until, event.ts + wait)

    def _add_cost(self, cost: object) -> None:
        if isinstance(cost, int | float):
            self.cost_usd += float(cost)
        else:
            self.unpriced += 1

"""Immutable records the journal stores and hands out: jobs, items, attempts, events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .spec import JobConfig, Params
from .states import ItemStatus, JobStatus

__all__ = [
    "AttemptRecord",
    "ErrorInfo",
    "ItemRecord",
    "JobRecord",
    "JobSnapshot",
]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorInfo(_Record):
    """Why an attempt or an item failed."""

    kind: str
    """Stable short name: `rate_limited`, `timeout`, `content_rejected`, ..."""
    message: str
    """What happened, for a person. Never contains a secret."""
    retryable: bool = False


class AttemptRecord(_Record):
    """One call to a provider for one item."""

    number: int
    started_at: float
    ended_at: float | None = None
    outcome: str = "running"
    """`running`, `ok`, `error`, `cancelled`, `interrupted` (the process stopped)."""
    error: ErrorInfo | None = None
    retry_after: float | None = None
    """The wait the provider asked for, in seconds."""
    cost_usd: float | None = None
    retry: bool = False
    """Started automatically after the previous attempt failed (not a resume, not `retry`)."""


class ItemRecord(_Record):
    """One image of a job, as the journal last recorded it."""

    job_id: str
    id: str
    index: int
    prompt: str
    params: Params = Params()
    references: tuple[str, ...] = ()
    """Reference image files (absolute paths; URLs were fetched into the workspace)."""
    depends_on: tuple[str, ...] = ()
    """Items this one waits for and is sent the images of (the anchor first)."""
    priority: int = 0
    """Higher starts first within the job; ties keep `index` order."""
    status: ItemStatus = ItemStatus.PENDING
    attempts: tuple[AttemptRecord, ...] = ()
    attempts_before_retry: int = 0
    """Attempts made before the last explicit retry; `max_attempts` counts from here."""
    error: ErrorInfo | None = None
    retry_at: float | None = None
    """When the next attempt may start, after a retryable failure."""
    created_at: float
    updated_at: float
    finished_at: float | None = None
    raw_path: str | None = None
    """The image as the provider sent it, relative to the workspace."""
    raw_sha256: str | None = None
    mime_type: str | None = None
    image_path: str | None = None
    """The post-processed image, relative to the workspace."""
    thumb_path: str | None = None
    width: int | None = None
    height: int | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    cost_usd: float | None = None
    revised_prompt: str | None = None
    """The prompt as the provider says it rewrote it (OpenAI's DALL-E 3 does)."""
    final_prompt: str | None = None
    """The prompt imagebatch sends: `prompt` with its preset's wording. None on jobs recorded
    before presets existed, which send `prompt`."""
    reserved_usd: float = 0.0
    """What the open attempt reserved of the budget (its image's listed price)."""
    uncertain_usd: float = 0.0
    """Reservations of attempts that ended without telling whether they were billed (a crash,
    a timeout, a cancel in flight): counted as spent against the budget."""
    cached_from: str | None = None
    """`job/item` whose paid image this one reuses (a result-cache hit: no call, no cost)."""
    cancel_requested: bool = False
    """Someone asked to cancel this running item; the runner stops it (or recovery does)."""
    crashes: int = 0
    """Runs that died (killed, crashed) while it was in flight, since its last retry."""

    @property
    def prompt_sent(self) -> str:
        """The prompt the provider is sent."""
        return self.final_prompt if self.final_prompt is not None else self.prompt

    @property
    def attempt_count(self) -> int:
        return len(self.attempts)

    @property
    def retries(self) -> int:
        """Attempts started automatically after a failed one."""
        return sum(1 for attempt in self.attempts if attempt.retry)


class JobRecord(_Record):
    """One batch of images, as the journal last recorded it."""

    id: str
    config: JobConfig
    status: JobStatus = JobStatus.PENDING
    active: bool = False
    """A runner is working on the job now (or was, when its process died)."""
    stopping: bool = False
    """Its run was asked to stop (Ctrl-C, SIGTERM, `stop`) and waits for the requests under
    way: a death now is the stop's doing (a service manager's SIGKILL), not an image's."""
    cancel_requested: bool = False
    cancelled: bool = False
    """The user cancelled the job; cleared by a retry. The job then ends `cancelled`."""
    total: int
    """How many items the job has (their order is kept apart from this small header)."""
    counts: dict[ItemStatus, int] = Field(default_factory=dict)
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    cost_usd: float = 0.0
    reserved_usd: float = 0.0
    """Budget held by attempts in flight."""
    uncertain_usd: float = 0.0
    """Budget taken by attempts that may have been billed (see `ItemRecord.uncertain_usd`)."""
    run_s: float = 0.0
    """Seconds runners have worked on the job, over every run that ended (a resume adds to it)."""
    run_started_at: float | None = None
    """When the current (or last) run began, wall-clock time."""
    concurrency: int | None = None
    """An adaptive job's concurrency limit (`concurrency: "auto"`), as its runner last recorded
    it; None before its first run."""

    def run_time(self, now: float) -> float:
        """Seconds runners have worked on the job, the run going on now included."""
        if self.active and self.run_started_at is not None:
            return self.run_s + max(0.0, now - self.run_started_at)
        return self.run_s

    @property
    def key(self) -> str:
        return self.config.key

    def count(self, status: ItemStatus) -> int:
        return self.counts.get(status, 0)


@dataclass(frozen=True)
class JobSnapshot:
    """A job and its items as one read saw them, and the last event that read includes."""

    job: JobRecord
    items: list[ItemRecord]
    seq: int

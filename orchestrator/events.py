"""What happened to a job, in the order the journal committed it: one frozen model per event type.

Every event carries its sequence number (gapless across the workspace), its time, its job, the
item where there is one, and the status the job or item has after it. The fields after those
depend on the type. `parse_event` reads one back from its JSON form; sinks match on the class:

```python
match event:
    case ItemFailed(kind=kind, message=message): ...
    case ItemCompleted(image_path=path): ...
```
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "Event",
    "EventType",
    "ItemCancelled",
    "ItemCompleted",
    "ItemFailed",
    "ItemGenerated",
    "ItemReset",
    "ItemRetrying",
    "ItemStarted",
    "JobCancelRequested",
    "JobConcurrency",
    "JobCreated",
    "JobFinished",
    "JobInterrupted",
    "JobStarted",
    "JobStopRequested",
    "parse_event",
]


class EventType(StrEnum):
    JOB_CREATED = "job.created"
    JOB_STARTED = "job.started"
    JOB_FINISHED = "job.finished"
    JOB_INTERRUPTED = "job.interrupted"
    JOB_CANCEL_REQUESTED = "job.cancel_requested"
    JOB_STOP_REQUESTED = "job.stop_requested"
    """Asked of the live runner: start no new request, finish the ones under way, then stop."""
    JOB_CONCURRENCY = "job.concurrency"
    """An adaptive job's concurrency limit changed."""
    ITEM_STARTED = "item.started"
    ITEM_GENERATED = "item.generated"
    ITEM_RETRYING = "item.retrying"
    ITEM_COMPLETED = "item.completed"
    ITEM_FAILED = "item.failed"
    ITEM_CANCELLED = "item.cancelled"
    ITEM_RESET = "item.reset"
    """Back to pending: an explicit retry, or recovery after a crash or interrupt."""


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    """Position in the workspace's event log: 1, 2, 3, ... with no gaps."""
    ts: float
    """Wall-clock time of the commit."""
    job_id: str
    item_id: str | None = None
    status: str
    """The item's status after the change (for job events, the job's)."""


class JobCreated(_Event):
    type: Literal[EventType.JOB_CREATED] = EventType.JOB_CREATED
    total: int


class JobStarted(_Event):
    type: Literal[EventType.JOB_STARTED] = EventType.JOB_STARTED
    recovered: int = 0
    """Items a process that died had left running, put back to pending."""


class JobFinished(_Event):
    type: Literal[EventType.JOB_FINISHED] = EventType.JOB_FINISHED
    counts: dict[str, int]
    run_s: float
    """Seconds runners have worked on the job, over every run."""


class JobInterrupted(_Event):
    type: Literal[EventType.JOB_INTERRUPTED] = EventType.JOB_INTERRUPTED
    counts: dict[str, int]
    run_s: float
    reason: Literal["interrupted", "error", "lease_lost"] = "interrupted"


class JobCancelRequested(_Event):
    type: Literal[EventType.JOB_CANCEL_REQUESTED] = EventType.JOB_CANCEL_REQUESTED
    item_ids: tuple[str, ...] = ()
    """The items to cancel; empty means the whole job."""


class JobStopRequested(_Event):
    type: Literal[EventType.JOB_STOP_REQUESTED] = EventType.JOB_STOP_REQUESTED


class JobConcurrency(_Event):
    type: Literal[EventType.JOB_CONCURRENCY] = EventType.JOB_CONCURRENCY
    limit: int
    """Attempts the job's provider lane lets run at once now (`concurrency: "auto"` learns it
    from the provider's 429s); recorded when it changes, at most about once a second."""


class ItemStarted(_Event):
    type: Literal[EventType.ITEM_STARTED] = EventType.ITEM_STARTED
    attempt: int = 0
    """The attempt's number; 0 when only post-processing runs (the image was already paid)."""
    retry: bool = False
    """Started automatically after a failed attempt."""

    @property
    def postprocess_only(self) -> bool:
        return self.attempt == 0


class ItemGenerated(_Event):
    type: Literal[EventType.ITEM_GENERATED] = EventType.ITEM_GENERATED
    bytes: int
    width: int
    height: int
    cost_usd: float | None = None
    cached: bool = False
    """The image came from the result cache: no call was made, nothing was paid."""


class ItemRetrying(_Event):
    type: Literal[EventType.ITEM_RETRYING] = EventType.ITEM_RETRYING
    kind: str
    message: str
    delay_s: float
    retry_after: float | None = None
    """The wait the provider asked for, if it named one."""


class ItemCompleted(_Event):
    type: Literal[EventType.ITEM_COMPLETED] = EventType.ITEM_COMPLETED
    image_path: str


class ItemFailed(_Event):
    type: Literal[EventType.ITEM_FAILED] = EventType.ITEM_FAILED
    kind: str
    message: str


class ItemCancelled(_Event):
    type: Literal[EventType.ITEM_CANCELLED] = EventType.ITEM_CANCELLED


class ItemReset(_Event):
    type: Literal[EventType.ITEM_RESET] = EventType.ITEM_RESET
    reason: Literal["retry", "interrupted"]


Event = Annotated[
    JobCreated
    | JobStarted
    | JobFinished
    | JobInterrupted
    | JobCancelRequested
    | JobStopRequested
    | JobConcurrency
    | ItemStarted
    | ItemGenerated
    | ItemRetrying
    | ItemCompleted
    | ItemFailed
    | ItemCancelled
    | ItemReset,
    Field(discriminator="type"),
]
"""Any event; the `type` field tells which."""

_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(text: str | bytes) -> Event:
    """An event from its JSON form (as the journal stores it)."""
    return _ADAPTER.validate_json(text)

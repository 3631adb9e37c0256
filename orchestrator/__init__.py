"""imagebatch: generate batches of images against slow, rate-limited, flaky image APIs.

The library's surface: build a `JobSpec` (or `load_spec` a file), then on a running event loop
`await Orchestrator(workspace).create(spec)`, then `await orchestrator.run(job_id)`.
"""

from __future__ import annotations

from .errors import (
    ConfigError,
    ImageBatchError,
    KeyConflictError,
    NotFoundError,
    PermanentError,
    ProviderError,
    RetryableError,
)
from .records import Event, EventType, ItemRecord, JobRecord
from .service import Orchestrator
from .spec import JobSpec, parse_spec
from .specfile import load_spec
from .states import ItemStatus, JobStatus
from .storage import Workspace

__all__ = [
    "ConfigError",
    "Event",
    "EventType",
    "ImageBatchError",
    "ItemRecord",
    "ItemStatus",
    "JobRecord",
    "JobSpec",
    "JobStatus",
    "KeyConflictError",
    "NotFoundError",
    "Orchestrator",
    "PermanentError",
    "ProviderError",
    "RetryableError",
    "Workspace",
    "load_spec",
    "parse_spec",
]

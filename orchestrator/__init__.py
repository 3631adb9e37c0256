"""imagebatch: generate batches of images against slow, rate-limited, flaky image APIs.

The library's surface, on a running event loop:

```python
async with Orchestrator(Workspace.resolve(None, os.environ), env=os.environ) as orchestrator:
    job = await orchestrator.submit(load_spec(Path("story.json")))   # a JobHandle
    await job.wait()
    for item in await job.items():
        print(item.id, item.status, item.image_path)
```

A `JobHandle` holds any job of the workspace, run here, by another process or not at all:
`status`, `items`, `tally`, `events`, `wait`, `cancel`, `cancel_items`, `retry`,
`retry_failed`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import on_first_use

if TYPE_CHECKING:
    from .errors import (
        ConfigError,
        ImageBatchError,
        KeyConflictError,
        LeaseLostError,
        NotFoundError,
        PermanentError,
        ProviderError,
        RetryableError,
    )
    from .events import Event, EventType
    from .handle import JobHandle
    from .records import ItemRecord, JobRecord, JobSnapshot
    from .service import Orchestrator
    from .spec import JobSpec, parse_spec
    from .specfile import load_spec
    from .states import ItemStatus, JobStatus
    from .storage import Workspace
    from .tally import Tally

# Each name is imported on first use, so `import orchestrator.cli` (and `imagebatch --help`)
# does not load the whole library.
_HOMES = {
    "ConfigError": ".errors",
    "ImageBatchError": ".errors",
    "KeyConflictError": ".errors",
    "LeaseLostError": ".errors",
    "NotFoundError": ".errors",
    "PermanentError": ".errors",
    "ProviderError": ".errors",
    "RetryableError": ".errors",
    "Event": ".events",
    "EventType": ".events",
    "JobHandle": ".handle",
    "ItemRecord": ".records",
    "JobRecord": ".records",
    "JobSnapshot": ".records",
    "Orchestrator": ".service",
    "JobSpec": ".spec",
    "parse_spec": ".spec",
    "load_spec": ".specfile",
    "ItemStatus": ".states",
    "JobStatus": ".states",
    "Workspace": ".storage",
    "Tally": ".tally",
}


__getattr__ = on_first_use(__name__, _HOMES)


__all__ = [
    "ConfigError",
    "Event",
    "EventType",
    "ImageBatchError",
    "ItemRecord",
    "ItemStatus",
    "JobHandle",
    "JobRecord",
    "JobSnapshot",
    "JobSpec",
    "JobStatus",
    "KeyConflictError",
    "LeaseLostError",
    "NotFoundError",
    "Orchestrator",
    "PermanentError",
    "ProviderError",
    "RetryableError",
    "Tally",
    "Workspace",
    "load_spec",
    "parse_spec",
]

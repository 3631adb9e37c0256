"""The durable journal of a workspace: the only writer of job and item state.

`Journal` (async, used on the event loop) runs `DiskJournal` (SQLite, synchronous) on its own
threads. `store` holds the layout, `commit` the one way state changes, `disk` the reads, job
creation and the requests anyone may make, `runs` the verbs of the process running a job,
`budget` their budget arithmetic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import on_first_use

if TYPE_CHECKING:
    from .budget import WAIT_FOR_BUDGET
    from .commit import attempt_ended, attempt_started, error_info
    from .disk import DiskJournal
    from .fence import LeaseCheck, LeaseNotHeld
    from .journal import Journal, Run
    from .runs import ProcessedImage, RawImage, RunJournal

# Each name is imported on first use: a store worker process unpickles a `LeaseCheck`, and
# `fence` alone is what it needs, not the journal with its models.
_HOMES = {
    "WAIT_FOR_BUDGET": ".budget",
    "attempt_ended": ".commit",
    "attempt_started": ".commit",
    "error_info": ".commit",
    "DiskJournal": ".disk",
    "LeaseCheck": ".fence",
    "LeaseNotHeld": ".fence",
    "Journal": ".journal",
    "Run": ".journal",
    "ProcessedImage": ".runs",
    "RawImage": ".runs",
    "RunJournal": ".runs",
}


__getattr__ = on_first_use(__name__, _HOMES)


__all__ = [
    "WAIT_FOR_BUDGET",
    "DiskJournal",
    "Journal",
    "LeaseCheck",
    "LeaseNotHeld",
    "ProcessedImage",
    "RawImage",
    "Run",
    "RunJournal",
    "attempt_ended",
    "attempt_started",
    "error_info",
]

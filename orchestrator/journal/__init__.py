"""The durable journal of a workspace: the only writer of job and item state.

`Journal` (async, used on the event loop) runs `DiskJournal` (SQLite, synchronous) on its own
threads. `store` holds the layout, `commit` the one way state changes, `disk` the reads, job
creation and the requests anyone may make, `runs` the verbs of the process running a job,
`budget` their budget arithmetic.
"""

from __future__ import annotations

from .budget import WAIT_FOR_BUDGET
from .commit import attempt_ended, attempt_started, error_info
from .disk import DiskJournal
from .fence import LeaseCheck, LeaseNotHeld
from .journal import Journal, Run
from .runs import ProcessedImage, RawImage, RunJournal

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

"""Which jobs are stuck: a job the journal says a runner works on (`active`) while no live
process holds its key's lock, because its heartbeat is older than the stale limit or its process
is gone.

Pure, like `stats`: the caller reads the job, its key's lock holder and whether the journal
thinks the runner is live (`runner_live`), and passes the time in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .locks import LockOwner
from .records import JobRecord

__all__ = ["Stuck", "stuck"]


@dataclass(frozen=True)
class Stuck:
    """A job that should be running but that no live process runs."""

    job_id: str
    key: str
    heartbeat_age_s: float | None
    """Seconds since its runner last said it was alive; None when nobody holds its key."""
    pid: int | None
    host: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.job_id,
            "key": self.key,
            "heartbeat_age_s": self.heartbeat_age_s,
            "pid": self.pid,
            "host": self.host,
        }


def stuck(job: JobRecord, holder: LockOwner | None, *, live: bool, now: float) -> Stuck | None:
    """`job` as a stuck job if the journal says a runner works on it but `live` says no live
    process holds its key (the journal's `runner_live`); None otherwise."""
    if not job.active or live:
        return None
    if holder is None or holder.job_id != job.id:
        return Stuck(job.id, job.key, None, None, None)
    age = max(0.0, now - holder.heartbeat_at)
    return Stuck(job.id, job.key, age, holder.pid, holder.host)

"""What the CLI prints about jobs: summaries for people and a stable JSON shape for programs.

The JSON shape (`job_json`, `item_json`) is a contract: fields are added, never renamed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .records import ItemRecord, JobRecord
from .states import JOB_TERMINAL, ItemStatus, JobStatus
from .storage import Workspace

__all__ = ["exit_code", "item_json", "job_json", "job_summary", "jobs_table", "status_text"]

EXIT_CODES = {
    JobStatus.COMPLETED: 0,
    JobStatus.PARTIAL: 3,
    JobStatus.FAILED: 4,
    JobStatus.CANCELLED: 4,
    JobStatus.PENDING: 130,
    JobStatus.RUNNING: 130,
}


def exit_code(job: JobRecord) -> int:
    """0 completed, 3 partial, 4 failed or cancelled, 130 left unfinished (interrupted)."""
    return EXIT_CODES[job.status]


def job_json(job: JobRecord, workspace: Workspace) -> dict[str, Any]:
    return {
        "id": job.id,
        "key": job.key,
        "name": job.config.name,
        "status": str(job.status),
        "provider": job.config.provider,
        "model": job.config.model,
        "total": job.total,
        "counts": {str(status): job.count(status) for status in ItemStatus},
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "cost_usd": job.cost_usd,
        "images_dir": str(workspace.job_dir(job.id)),
    }


def item_json(item: ItemRecord, workspace: Workspace) -> dict[str, Any]:
    def path(rel: str | None) -> str | None:
        return str(workspace.absolute(rel)) if rel else None

    return {
        "id": item.id,
        "status": str(item.status),
        "prompt": item.prompt,
        "attempts": item.attempt_count,
        "error": item.error.model_dump() if item.error else None,
        "retry_at": item.retry_at,
        "image": path(item.image_path),
        "raw": path(item.raw_path),
        "thumbnail": path(item.thumb_path),
        "width": item.width,
        "height": item.height,
        "model": item.model,
        "cost_usd": item.cost_usd,
    }


def job_summary(job: JobRecord, items: list[ItemRecord], workspace: Workspace) -> str:
    """The few lines printed when a run ends."""
    counts = ", ".join(f"{job.count(s)} {s}" for s in ItemStatus if job.count(s))
    retries = sum(max(0, item.attempt_count - 1) for item in items)
    took = ""
    if job.started_at and job.finished_at:
        took = f" in {job.finished_at - job.started_at:.1f}s"
    lines = [f"job {job.id}: {job.status} ({counts}; {retries} retries){took}"]
    problems = [item for item in items if item.status in (ItemStatus.FAILED, ItemStatus.CANCELLED)]
    for item in problems:
        reason = f"{item.error.kind}: {item.error.message}" if item.error else str(item.status)
        lines.append(f"  {item.id}: {reason}")
    if job.count(ItemStatus.COMPLETED):
        lines.append(f"images: {workspace.job_dir(job.id)}")
    if problems:
        lines.append(f"retry the failed ones: imagebatch retry {job.id}")
    if job.status in (JobStatus.PENDING, JobStatus.RUNNING):
        lines.append(f"continue it: imagebatch resume {job.id}")
    return "\n".join(lines)


def status_text(
    job: JobRecord, items: list[ItemRecord], workspace: Workspace, *, live: bool
) -> str:
    """`imagebatch status JOB`: the job, whether a process is running it, one line per item."""
    head = [
        f"job {job.id}  key {job.key}  {job.status}",
        f"provider {job.config.provider}"
        + (f" / {job.config.model}" if job.config.model else "")
        + f"  created {_when(job.created_at)}",
    ]
    if job.status not in JOB_TERMINAL and not live:
        verb = "resume" if job.started_at else "start"
        head.append(f"no process is running it: `imagebatch {verb} {job.id}` continues it")
    width = max(len(item.id) for item in items) if items else 4
    rows = []
    for item in items:
        note = ""
        if item.error is not None:
            note = f"{item.error.kind}: {item.error.message}"
        elif item.image_path:
            note = str(workspace.absolute(item.image_path))
        rows.append(f"  {item.id:<{width}}  {item.status:<9}  {item.attempt_count} att  {note}")
    return "\n".join(head + rows)


def jobs_table(jobs: list[JobRecord]) -> str:
    if not jobs:
        return "no jobs yet"
    lines = []
    for job in jobs:
        done = job.count(ItemStatus.COMPLETED)
        lines.append(
            f"{job.id:<32} {job.status:<9} {done:>4}/{job.total:<4} "
            f"{job.config.provider:<8} {_when(job.created_at)}"
        )
    return "\n".join(lines)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")

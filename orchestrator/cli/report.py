"""What the CLI prints about jobs: summaries for people and a stable JSON shape for programs.

The JSON shape (`job_json`, `item_json`, ...) is a contract: fields are added, never renamed.
It is built in `json_shape.py` and importable from here.
"""

from __future__ import annotations

import time
from collections.abc import Set
from datetime import datetime

from rich.table import Table

from ..records import ItemRecord, JobRecord
from ..states import JOB_TERMINAL, ItemStatus, JobStatus
from ..storage import Workspace
from ..webhooks.models import UndeliveredWebhook
from ..wording import concurrency_text, format_cost, format_duration, format_usd
from .json_shape import item_json, job_json, undelivered_json, webhook_json

__all__ = [
    "exit_code",
    "failure_groups",
    "item_json",
    "job_json",
    "job_summary",
    "jobs_table",
    "retries_of",
    "status_text",
    "summary_rows",
    "summary_table",
    "undelivered_json",
    "undelivered_text",
    "webhook_json",
]

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


def retries_of(items: list[ItemRecord]) -> int:
    """Attempts started automatically after a failed one (not resumes, not explicit retries)."""
    return sum(1 for item in items for attempt in item.attempts if attempt.retry)


def failure_groups(items: list[ItemRecord]) -> list[tuple[str, list[ItemRecord]]]:
    """Failed items grouped by the kind of error, the largest group first."""
    groups: dict[str, list[ItemRecord]] = {}
    for item in items:
        if item.status == ItemStatus.FAILED:
            groups.setdefault(item.error.kind if item.error else "failed", []).append(item)
    return sorted(groups.items(), key=lambda group: -len(group[1]))


def job_cost(job: JobRecord, items: list[ItemRecord]) -> str:
    """What the job's images cost, `+` when some have no known price."""
    unpriced = sum(1 for item in items if item.raw_path and item.cost_usd is None)
    return format_cost(job.cost_usd, unpriced)


def summary_rows(
    job: JobRecord, items: list[ItemRecord], workspace: Workspace, *, run_s: float | None = None
) -> list[tuple[str, str]]:
    """What a run's summary says, as (label, text) rows for a table or for plain lines."""
    counts = ", ".join(f"{job.count(s)} {s}" for s in ItemStatus if job.count(s))
    hits = sum(1 for i in items if i.cached_from is not None and i.status == ItemStatus.COMPLETED)
    if hits:
        counts += f"; {hits} from the cache, not paid for"
    rows = [("status", f"{job.status} ({counts})")]
    # a run that died (nobody recorded its end) counts to its last change
    in_all = job.run_time(job.updated_at)
    took = format_duration(in_all)
    if run_s is not None and abs(run_s - in_all) > 0.05:
        took = f"{format_duration(run_s)} this run, {took} in all"
    rows += [("time", took), ("retries", str(retries_of(items))), ("cost", job_cost(job, items))]
    for kind, failed in failure_groups(items):
        ids = ", ".join(item.id for item in failed[:5]) + (" ..." if len(failed) > 5 else "")
        message = failed[0].error.message if failed[0].error else ""
        rows.append((f"failed: {kind}", f"{len(failed)} ({ids}): {message}"))
    if job.count(ItemStatus.COMPLETED):
        rows.append(("images", str(workspace.job_dir(job.id))))
    if job.count(ItemStatus.FAILED) or job.count(ItemStatus.CANCELLED):
        rows.append(("next", f"imagebatch retry {job.id}  (runs failed and cancelled items)"))
    if job.status in (JobStatus.PENDING, JobStatus.RUNNING):
        rows.append(("next", f"imagebatch resume {job.id}  (continues it)"))
    return rows


def job_summary(
    job: JobRecord, items: list[ItemRecord], workspace: Workspace, *, run_s: float | None = None
) -> str:
    """The summary printed when a run ends, as plain lines (for pipes and logs)."""
    rows = summary_rows(job, items, workspace, run_s=run_s)
    status, time_, retries, cost = (text for _, text in rows[:4])
    plural = "retry" if retries == "1" else "retries"
    lines = [f"job {job.id}: {status}; {retries} {plural}; {time_}; cost {cost}"]
    lines += [f"  {label}: {text}" for label, text in rows[4:]]
    return "\n".join(lines)


def summary_table(
    job: JobRecord, items: list[ItemRecord], workspace: Workspace, *, run_s: float | None = None
) -> Table:
    """The same summary as a table, for a terminal."""
    table = Table(title=f"job {job.id}", show_header=False, title_justify="left", expand=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, text in summary_rows(job, items, workspace, run_s=run_s):
        table.add_row(label, text)
    return table


def status_text(
    job: JobRecord,
    items: list[ItemRecord],
    workspace: Workspace,
    *,
    live: bool,
    undelivered: int = 0,
) -> str:
    """`imagebatch status JOB`: the job, whether a process is running it, its webhook (and how
    many of its messages were not delivered), one line per item."""
    head = [
        f"job {job.id}  key {job.key}  {job.status}",
        f"provider {job.config.provider}"
        + (f" / {job.config.model}" if job.config.model else "")
        + f"  created {_when(job.created_at)}",
        f"{_done(job)} done · {retries_of(items)} retries · "
        # a run nobody carries on (a killed process) ended at its last change, not now
        f"{format_duration(job.run_time(time.time() if live else job.updated_at))} run"
        f" · cost {job_cost(job, items)}",
    ]
    head += _budget_lines(job)
    limits = job.config.limits
    if limits.adaptive:
        then = "" if job.active or job.concurrency is None else " when it last ran"
        head.append(concurrency_text(job.concurrency, limits.most_in_flight) + then)
    if job.config.webhook is not None:
        kept = (
            f" · {undelivered} not delivered: `imagebatch webhooks {job.id}`" if undelivered else ""
        )
        head.append(f"webhook {job.config.webhook.url}{kept}")
    if job.status not in JOB_TERMINAL and not live:
        verb = "resume" if job.started_at else "start"
        head.append(f"no process is running it: `imagebatch {verb} {job.id}` continues it")
    elif live and job.active and job.stopping:
        head.append("stopping: its process lets the requests under way finish, then stops")
    return "\n".join(head + _item_lines(items, workspace))


def _budget_lines(job: JobRecord) -> list[str]:
    """`budget $1.00: $0.42 spent, ...`, for a job with a budget."""
    budget = job.config.limits.budget_usd
    if budget is None:
        return []
    line = f"budget {format_usd(budget)}: {format_usd(job.cost_usd)} spent"
    if job.uncertain_usd:
        line += f", {format_usd(job.uncertain_usd)} possibly billed (stopped in flight)"
    if job.reserved_usd:
        line += f", {format_usd(job.reserved_usd)} reserved by images in flight"
    return [line]


def _item_lines(items: list[ItemRecord], workspace: Workspace) -> list[str]:
    """One line per item (and the prompt sent, when a preset changed it)."""
    width = max(len(item.id) for item in items) if items else 4
    rows = []
    for item in items:
        note = ""
        if item.error is not None:
            note = f"{item.error.kind}: {item.error.message}"
        elif item.image_path:
            note = str(workspace.absolute(item.image_path))
        if item.cached_from is not None:
            note = f"cached (paid by {item.cached_from}) {note}"
        cost = f"${item.cost_usd:.3f}" if item.cost_usd is not None else "-"
        attempts = f"{item.attempt_count:>2} att"
        rows.append(f"  {item.id:<{width}}  {item.status:<9}  {attempts}  {cost:>7}  {note}")
        if item.prompt_sent != item.prompt:
            rows.append(f"  {'':<{width}}  sent: {item.prompt_sent}")
    return rows


def jobs_table(jobs: list[JobRecord], *, stopped: Set[str] = frozenset()) -> str:
    """`imagebatch list`: a line per job; a job said to be running whose process is gone (the
    ids in `stopped`) is listed `stopped`."""
    if not jobs:
        return "no jobs yet"
    lines = []
    for job in jobs:
        status = "stopped" if job.id in stopped else str(job.status)
        lines.append(
            f"{job.id:<32} {status:<9} {_done(job):>9} "
            f"{job.config.provider:<8} {format_cost(job.cost_usd):>8}  {_when(job.created_at)}"
        )
    return "\n".join(lines)


def _done(job: JobRecord) -> str:
    return f"{job.count(ItemStatus.COMPLETED)}/{job.total}"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def undelivered_text(job: JobRecord, undelivered: list[UndeliveredWebhook]) -> str:
    """`imagebatch webhooks JOB`: one line per message the receiver did not take."""
    webhook = job.config.webhook
    if webhook is None:
        return f"job {job.id} has no webhook"
    if not undelivered:
        return f"job {job.id}: every webhook message was delivered to {webhook.url}"
    noun = "message" if len(undelivered) == 1 else "messages"
    lines = [f"job {job.id}: {len(undelivered)} webhook {noun} not delivered to {webhook.url}"]
    width = max(len(kept.message.id) for kept in undelivered)
    for kept in undelivered:
        tries = f"{kept.tries} {'try' if kept.tries == 1 else 'tries'}"
        lines.append(
            f"  {kept.message.id:<{width}}  {kept.message.type:<14}  {tries:>7}  "
            f"{_when(kept.stored_at)}  {kept.last_error}"
        )
    if job.status not in JOB_TERMINAL:
        lines.append(f"next: imagebatch resume {job.id}  (sends them again, with the same ids)")
    return "\n".join(lines)

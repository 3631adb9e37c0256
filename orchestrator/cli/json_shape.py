"""The JSON the CLI prints for programs (`--json`): jobs, items, webhooks and the messages a
webhook did not take.

This shape is a contract: fields are added, never renamed. `report.py` (the text for people)
re-exports these functions.
"""

from __future__ import annotations

import json
from typing import Any

from ..records import ItemRecord, JobRecord
from ..states import ItemStatus
from ..storage import Workspace
from ..webhooks.models import UndeliveredWebhook, WebhookSpec

__all__ = ["item_json", "job_json", "undelivered_json", "webhook_json"]


def job_json(job: JobRecord, workspace: Workspace) -> dict[str, Any]:
    """A job as `status --json` and `list --json` show it. `concurrency` is the limit now: an
    adaptive job's as its runner last recorded it (null before it ran), else the spec's."""
    limits = job.config.limits
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
        "budget_usd": job.config.limits.budget_usd,
        "reserved_usd": job.reserved_usd,
        "uncertain_usd": job.uncertain_usd,
        "run_s": job.run_s,
        "concurrency": job.concurrency if limits.adaptive else limits.concurrency,
        "concurrency_auto": limits.adaptive,
        "max_concurrency": limits.most_in_flight,
        "cancelled": job.cancelled,
        "stopping": job.stopping,
        "images_dir": str(workspace.job_dir(job.id)),
    }


def item_json(item: ItemRecord, workspace: Workspace) -> dict[str, Any]:
    def path(rel: str | None) -> str | None:
        return str(workspace.absolute(rel)) if rel else None

    return {
        "id": item.id,
        "status": str(item.status),
        "prompt": item.prompt,
        "final_prompt": item.prompt_sent,
        "priority": item.priority,
        "depends_on": list(item.depends_on),
        "references": list(item.references),
        "attempts": item.attempt_count,
        "retries": sum(1 for attempt in item.attempts if attempt.retry),
        "error": item.error.model_dump() if item.error else None,
        "retry_at": item.retry_at,
        "image": path(item.image_path),
        "raw": path(item.raw_path),
        "thumbnail": path(item.thumb_path),
        "width": item.width,
        "height": item.height,
        "model": item.model,
        "cost_usd": item.cost_usd,
        "cached": item.cached_from is not None,
        "cached_from": item.cached_from,
    }


def webhook_json(webhook: WebhookSpec, undelivered: int) -> dict[str, Any]:
    """The job's webhook in `status --json`: where, which events, how many not delivered."""
    return {"url": webhook.url, "events": list(webhook.events), "undelivered": undelivered}


def undelivered_json(job: JobRecord, undelivered: list[UndeliveredWebhook]) -> dict[str, Any]:
    """`imagebatch webhooks JOB --json`: the webhook and the messages it did not take."""
    webhook = job.config.webhook
    return {
        "job_id": job.id,
        "url": webhook.url if webhook else None,
        "events": list(webhook.events) if webhook else [],
        "undelivered": [
            {
                "id": kept.message.id,
                "type": kept.message.type,
                "tries": kept.tries,
                "last_error": kept.last_error,
                "stored_at": kept.stored_at,
                "body": json.loads(kept.message.body),
            }
            for kept in undelivered
        ],
    }

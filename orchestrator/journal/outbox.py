"""Webhook messages that were not delivered, kept per job in `webhook_undelivered`.

They are not job or item state: no lease is needed to keep one, and keeping one appends no
event. `keep` stores (or updates) messages by id, `forget` drops the ones delivered later, and
`undelivered` lists a job's in the order they were kept.
"""

from __future__ import annotations

from ..webhooks.models import UndeliveredWebhook
from .store import Store

__all__ = ["forget", "keep", "undelivered"]


def keep(store: Store, messages: list[UndeliveredWebhook]) -> None:
    """Store `messages`; one already kept (same job and id) is replaced, keeping its place."""
    for message in messages:
        store.execute(
            "INSERT INTO webhook_undelivered (job_id, id, record) VALUES (?, ?, ?) "
            "ON CONFLICT (job_id, id) DO UPDATE SET record = excluded.record",
            message.job_id,
            message.message.id,
            message.model_dump_json(),
        )


def forget(store: Store, job_id: str, ids: list[str]) -> None:
    """Drop these messages of the job (they were delivered after all)."""
    for message_id in ids:
        store.execute(
            "DELETE FROM webhook_undelivered WHERE job_id = ? AND id = ?", job_id, message_id
        )


def undelivered(store: Store, job_id: str) -> list[UndeliveredWebhook]:
    """The job's undelivered messages, oldest kept first."""
    rows = store.execute(
        "SELECT record FROM webhook_undelivered WHERE job_id = ? ORDER BY rowid", job_id
    ).fetchall()
    return [UndeliveredWebhook.model_validate_json(row[0]) for row in rows]

"""What a webhook is: the spec's `webhook` block, one message to send, and one left undelivered.

Pure pydantic records, no I/O: `spec.py` takes `WebhookSpec` from here, the sender builds
`WebhookMessage`s, the journal stores `UndeliveredWebhook`s. The secret itself is never in any
of them: the spec names the environment variable that holds it (`secret_env`).
"""

from __future__ import annotations

import re
from typing import Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "WEBHOOK_EVENTS",
    "UndeliveredWebhook",
    "WebhookEventType",
    "WebhookMessage",
    "WebhookSpec",
]

WebhookEventType = Literal[
    "job.started", "item.completed", "item.failed", "job.progress", "job.finished"
]
WEBHOOK_EVENTS: tuple[WebhookEventType, ...] = get_args(WebhookEventType)
"""Every event type a webhook can ask for, in the order a job produces them."""

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_URL_LENGTH = 2000


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookSpec(_Record):
    """Where to POST a job's events and how to sign them (the spec's `webhook` block)."""

    url: str = Field(max_length=MAX_URL_LENGTH)
    """An http(s) URL. Hosts on loopback, private or link-local addresses are refused unless
    `IMAGEBATCH_ALLOW_LOCAL_URLS=1` is set."""
    secret_env: str
    """The name of the environment variable that holds the signing secret (`whsec_...`)."""
    events: tuple[WebhookEventType, ...] = Field(default=WEBHOOK_EVENTS, min_length=1)
    """The event types to send; all of them when left out."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https"):
            raise ValueError(
                f"must be an http:// or https:// URL, not {parts.scheme or 'one without a scheme'}"
            )
        if not parts.hostname:
            raise ValueError("must name a host, as in https://example.com/hooks")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "must not carry a user name or password; the signature proves who sends"
            )
        return value

    @field_validator("secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if value.startswith("whsec_"):
            # the secret itself was pasted here: say so without repeating it
            raise ValueError(
                "must name an environment variable (for example IMAGEBATCH_WEBHOOK_SECRET) "
                "that holds the secret, not the secret itself"
            )
        if not _ENV_NAME.fullmatch(value):
            raise ValueError(
                "must be an environment variable name: letters, digits and '_', "
                "not starting with a digit"
            )
        return value

    @field_validator("events", mode="before")
    @classmethod
    def _known_events(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            for name in value:
                if name not in WEBHOOK_EVENTS:
                    raise ValueError(
                        f"unknown event {name!r}; choose from {', '.join(WEBHOOK_EVENTS)}"
                    )
            if len(set(value)) != len(value):
                raise ValueError("names an event twice; list each once")
        return value


class WebhookMessage(_Record):
    """One event to POST: its id (the same on every try), its type and its exact body."""

    id: str
    """`webhook-id`: stable for the event, so a receiver can drop a repeat."""
    type: WebhookEventType
    body: str
    """The JSON text sent and signed, byte for byte the same on every try."""


class UndeliveredWebhook(_Record):
    """A message that was not delivered: every try failed, or the run stopped before it went."""

    job_id: str
    message: WebhookMessage
    tries: int
    """POSTs made so far (0 when it never left the queue)."""
    last_error: str
    """Why the last try failed, or why it was not tried."""
    stored_at: float
    """Wall-clock time it was kept in the journal."""

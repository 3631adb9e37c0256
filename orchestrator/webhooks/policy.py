"""How hard webhook messages are tried: the settings and the one backoff rule. Pure.

Kept apart from `delivery` (which loads aiohttp) so that the orchestrator, and every command that
never sends a webhook, can name the settings without loading an HTTP client.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["DeliverySettings", "next_delay"]


@dataclass(frozen=True)
class DeliverySettings:
    """How hard to try a receiver, and how much to hold for it."""

    tries: int = 5
    """POSTs per message, the first one included."""
    base_s: float = 1.0
    """Backoff after the first failed try; it doubles with each further one."""
    cap_s: float = 60.0
    """The longest wait between tries (a longer `Retry-After` is cut to it)."""
    timeout_s: float = 10.0
    """Time one POST may take, connecting included."""
    queue_size: int = 1000
    """Messages waiting to be sent; more than that are kept in the journal as undelivered."""
    drain_s: float = 5.0
    """After the job's run ends, how long the messages still queued may take to go out."""
    progress_every_s: float = 1.0
    """At most one `job.progress` per this many seconds."""


def next_delay(
    tries: int, settings: DeliverySettings, rng: random.Random, retry_after: float | None = None
) -> float | None:
    """Seconds to wait after `tries` failed tries, or None when there is no next try.

    "Equal jitter": half of the doubling backoff for sure, the other half drawn at random, so
    waits grow and receivers that failed together are not all tried again at once."""
    if tries >= settings.tries:
        return None
    backoff = min(settings.cap_s, settings.base_s * 2.0 ** min(tries - 1, 62))
    delay = backoff / 2 + rng.uniform(0.0, backoff / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.cap_s))
    return delay

"""What an attempt is made of: the request sent (with its reference images), what an item waits
for, the workspace's shared start rate, and how many attempts count against `max_attempts`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from .errors import RateLimitedError
from .imaging import MAX_IMAGE_BYTES, inspect_image
from .providers.base import GenerateRequest, Reference
from .quota import SharedQuota
from .records import ItemRecord
from .storage import read_regular

__all__ = [
    "Blocked",
    "Quota",
    "attempts_made",
    "build_request",
    "rate_limited_made",
    "read_request",
]


@dataclass(frozen=True)
class Quota:
    """The workspace's shared start rate, and this run's place in it."""

    shared: SharedQuota
    key: str
    """The provider, model and key it counts starts under."""
    rate_per_minute: float


@dataclass(frozen=True)
class Blocked:
    """The item waits for these items (its references) to end before it can start."""

    on: tuple[str, ...]


async def build_request(item: ItemRecord, from_items: list[Path] | None = None) -> GenerateRequest:
    """The provider request for the item's next attempt: the images of the items it references
    first (the anchor first), then its reference files, read off the loop."""
    paths = [*(from_items or ()), *(Path(p) for p in item.references)]
    references = tuple(
        [await asyncio.to_thread(_read_reference, path, n) for n, path in enumerate(paths)]
    )
    return _request(item, references)


def read_request(item: ItemRecord) -> GenerateRequest:
    """`build_request` for an item that references no other item, blocking (call it from a
    thread): its reference files are read here."""
    paths = [Path(p) for p in item.references]
    return _request(item, tuple(_read_reference(path, n) for n, path in enumerate(paths)))


def _request(item: ItemRecord, references: tuple[Reference, ...]) -> GenerateRequest:
    return GenerateRequest(
        job_id=item.job_id,
        item_id=item.id,
        prompt=item.prompt_sent,
        attempt=item.attempt_count + 1,
        references=references,
        **item.params.model_dump(),
    )


def attempts_made(item: ItemRecord) -> int:
    """Attempts that count against `max_attempts`: since the last explicit retry, and not those
    cut short by an interrupt or a cancel (stopping a run must not use up an item's tries)."""
    since_retry = item.attempts[item.attempts_before_retry :]
    return sum(1 for attempt in since_retry if attempt.outcome not in ("interrupted", "cancelled"))


def rate_limited_made(item: ItemRecord) -> int:
    """Of the attempts `attempts_made` counts, those the provider answered with a rate limit:
    they count against the retry policy's `max_rate_limited`, not `max_attempts`."""
    since_retry = item.attempts[item.attempts_before_retry :]
    return sum(
        1
        for attempt in since_retry
        if attempt.error is not None and attempt.error.kind == RateLimitedError.kind
    )


def _read_reference(path: Path, number: int) -> Reference:
    data = read_regular(path, MAX_IMAGE_BYTES)
    info = inspect_image(data)
    return Reference(data=data, mime_type=info.mime_type, name=f"ref-{number}.{info.ext}")

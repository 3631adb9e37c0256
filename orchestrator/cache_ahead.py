"""Which items of a job the result cache already holds, before they run: a run takes their
images from it and pays nothing for them, so the cost estimate a run prints leaves them out.

Only items whose request is known before anything runs are looked at. An item that waits for
other items' images (its references name them, or the job's anchor) will be sent bytes that do
not exist yet, so it counts as paid; so does one whose reference file cannot be read now. A
look reads the cache's index and sees the image file is there; nothing is decoded or written.
"""

from __future__ import annotations

import asyncio

from .attempts import read_request
from .cache import ResultCache, request_key
from .errors import ImageBatchError
from .records import ItemRecord, JobRecord

__all__ = ["in_cache"]


async def in_cache(
    job: JobRecord, items: list[ItemRecord], cache: ResultCache, model: str | None
) -> frozenset[str]:
    """The ids of the job's items whose very request an earlier job paid for (those a run of
    it took from the cache already too); `model` is the one the job's provider says it uses
    (as the run keys its requests)."""
    if not job.config.cache:
        return frozenset()
    taken = {item.id for item in items if item.cached_from is not None}  # a run got there first
    keys = await asyncio.to_thread(_keys, items, job.config.provider, model)
    held = await cache.holds(set(keys.values()), besides=job.id)
    return frozenset(taken | {item_id for item_id, key in keys.items() if key in held})


def _keys(items: list[ItemRecord], provider: str, model: str | None) -> dict[str, str]:
    """Each item's request key, for the items whose request is known now (blocking: it reads
    reference files and hashes every request)."""
    keys: dict[str, str] = {}
    for item in items:
        if item.depends_on or item.raw_path:
            continue
        try:
            request = read_request(item)
        except (OSError, ImageBatchError):  # the run will fail it, without a call
            continue
        keys[item.id] = request_key(provider, model, request)
    return keys

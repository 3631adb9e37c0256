"""What the journal keeps of an image: the paid one as received (`RawImage`), where its
post-processing wrote (`ProcessedImage`), and the item changes that record them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..events import ItemCompleted, ItemGenerated
from ..records import ItemRecord
from ..states import ItemStatus
from .budget import released
from .commit import Change, attempt_ended

__all__ = ["ProcessedImage", "RawImage", "completed", "generated"]


@dataclass(frozen=True)
class RawImage:
    """A paid image as received, written to disk: what the journal keeps of it."""

    path: str
    """Relative to the workspace."""
    sha256: str
    mime_type: str
    bytes: int
    width: int
    height: int
    model: str
    usage: dict[str, Any] | None = None
    cost_usd: float | None = None
    revised_prompt: str | None = None
    cached_from: str | None = None
    """`job/item` that paid for this image, when it came from the result cache."""


@dataclass(frozen=True)
class ProcessedImage:
    """Where post-processing wrote the image and its thumbnail (relative to the workspace)."""

    image_path: str
    thumb_path: str
    width: int
    height: int


def generated(item: ItemRecord, image: RawImage, now: float) -> Change:
    """The paid image recorded on the item: its attempt closed as ok, its reservation freed."""
    fields = {
        "attempts": attempt_ended(item, now, "ok", cost_usd=image.cost_usd),
        "raw_path": image.path,
        "raw_sha256": image.sha256,
        "mime_type": image.mime_type,
        "model": image.model,
        "usage": image.usage,
        "cost_usd": image.cost_usd,
        "revised_prompt": image.revised_prompt,
        "cached_from": image.cached_from,
        "error": None,
        **released(item, maybe_billed=image.cost_usd is None),
    }
    payload = {
        "bytes": image.bytes,
        "width": image.width,
        "height": image.height,
        "cost_usd": image.cost_usd,
        "cached": image.cached_from is not None,
    }
    return Change(item, ItemGenerated, None, fields, payload)


def completed(item: ItemRecord, processed: ProcessedImage) -> Change:
    fields = {
        "image_path": processed.image_path,
        "thumb_path": processed.thumb_path,
        "width": processed.width,
        "height": processed.height,
        "error": None,
    }
    payload = {"image_path": processed.image_path}
    return Change(item, ItemCompleted, ItemStatus.COMPLETED, fields, payload)

"""Images the fake server returns, drawn with Pillow: a colour from the prompt, a frame, and the
reference images pasted along the bottom edge (so a test can see they arrived)."""

from __future__ import annotations

import hashlib
import io

from PIL import Image, ImageDraw, UnidentifiedImageError

__all__ = ["ReferenceImageError", "make_image"]

FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


class ReferenceImageError(ValueError):
    """A reference image the server could not decode."""


def _colour(prompt: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    return digest[0], digest[1], digest[2]


def _paste_references(canvas: Image.Image, references: list[bytes]) -> None:
    side = max(8, min(canvas.width, canvas.height) // 6)
    for index, data in enumerate(references[:6]):
        try:
            with Image.open(io.BytesIO(data)) as reference:
                thumb = reference.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError):
            raise ReferenceImageError(f"reference image {index + 1} is not a valid image") from None
        thumb.thumbnail((side, side))
        canvas.paste(thumb, (index * (side + 4) + 4, canvas.height - side - 4))


def make_image(
    prompt: str, width: int, height: int, fmt: str = "png", references: list[bytes] | None = None
) -> bytes:
    """Encoded image bytes (`fmt`: png, jpeg or webp) of exactly `width` x `height` pixels."""
    colour = _colour(prompt)
    canvas = Image.new("RGB", (width, height), colour)
    draw = ImageDraw.Draw(canvas)
    inverse = (255 - colour[0], 255 - colour[1], 255 - colour[2])
    inset = max(1, min(width, height) // 8)
    draw.rectangle((inset, inset, width - inset, height - inset), outline=inverse, width=3)
    if references:
        _paste_references(canvas, references)
    out = io.BytesIO()
    if fmt == "png":
        canvas.save(out, "PNG", compress_level=1)
    else:
        canvas.save(out, FORMATS[fmt], quality=80)
    return out.getvalue()

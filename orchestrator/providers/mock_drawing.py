"""The mock provider's pictures: a seeded gradient, a few shapes, the prompt, the item id and a
thumbnail of the reference, drawn with Pillow. Pure functions of their arguments, run in a worker
thread.

A reference shows the way a real model's would: the gradient takes the reference's colours
(the average of its top half above, of its bottom half below), so every page drawn from one
anchor shares its palette, and a test can tell which reference an image was drawn from.
"""

from __future__ import annotations

import functools
import hashlib
import io
import random
import textwrap

from PIL import Image, ImageDraw, ImageFont, ImageOps

from ..errors import BadResponseError, InvalidRequestError
from ..imaging import load_image
from ..small_png import small_png, writes

__all__ = ["draw_png", "palette", "seeded_random"]

Colour = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
_PANEL = (0, 0, 0, 150)
_INK = (255, 255, 255, 255)
MIN_TEXT_SIDE = 64
"""A picture narrower than this gets no prompt and no id: the smallest font would not fit a
readable line, and drawing text is most of the cost of a tiny picture."""


def seeded_random(text: str) -> random.Random:
    """A generator seeded with the first 8 bytes of `sha256(text)`."""
    return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))


@functools.lru_cache(maxsize=32)
def _font(px: int) -> Font:
    return ImageFont.load_default(size=px)


@functools.lru_cache(maxsize=32)
def _gradient(size: tuple[int, int]) -> Image.Image:
    """The top-to-bottom blend mask for `size`; made once per size (half the cost of a small
    picture), never changed by its users."""
    return Image.linear_gradient("L").resize(size)


def _colour(rng: random.Random) -> Colour:
    return rng.randrange(256), rng.randrange(256), rng.randrange(256)


def draw_png(
    *, seed: str, size: tuple[int, int], prompt: str, label: str, reference: bytes | None
) -> bytes:
    """A gradient, a few shapes, the prompt, the item id (on pictures of at least
    `MIN_TEXT_SIDE` pixels a side) and the reference's thumbnail."""
    rng = seeded_random(seed)
    mask = _gradient(size)
    top, bottom = _colour(rng), _colour(rng)
    ref = _load_reference(reference) if reference is not None else None
    if ref is not None:
        top, bottom = palette(ref)
    image = Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)
    _shapes(ImageDraw.Draw(image), rng, size)
    if min(size) >= MIN_TEXT_SIDE:
        overlay = Image.new("RGBA", size, (0, 0, 0, 0))
        _caption(ImageDraw.Draw(overlay), prompt, size)
        _label(ImageDraw.Draw(overlay), label, size)
        image = Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
    if ref is not None:
        _paste_reference(image, ref)
    if writes(image):
        return small_png(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _shapes(draw: ImageDraw.ImageDraw, rng: random.Random, size: tuple[int, int]) -> None:
    width, height = size
    for _ in range(rng.randint(3, 6)):
        x0, y0 = rng.uniform(-0.1, 0.85) * width, rng.uniform(-0.1, 0.85) * height
        x1, y1 = x0 + rng.uniform(0.1, 0.5) * width, y0 + rng.uniform(0.1, 0.5) * height
        fill = _colour(rng)
        kind = rng.choice(("ellipse", "rectangle", "triangle"))
        if kind == "ellipse":
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif kind == "rectangle":
            draw.rounded_rectangle((x0, y0, x1, y1), radius=min(x1 - x0, y1 - y0) / 6, fill=fill)
        else:
            draw.polygon([(x0, y1), ((x0 + x1) / 2, y0), (x1, y1)], fill=fill)


def _caption(draw: ImageDraw.ImageDraw, prompt: str, size: tuple[int, int]) -> None:
    """The prompt, wrapped, on a dark panel across the bottom of the picture."""
    width, height = size
    px = max(8, min(width, height) // 20)
    margin, line_h = px // 2 + 2, px * 5 // 4
    per_line = max(4, int((width - 2 * margin) / (px * 0.6)))
    max_lines = max(1, int(height * 0.45) // line_h)
    lines = textwrap.wrap(" ".join(prompt[:2000].split()), width=per_line)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1][: per_line - 3] + "..."]
    top = height - len(lines) * line_h - 2 * margin
    draw.rectangle((0, top, width, height), fill=_PANEL)
    for index, line in enumerate(lines):
        draw.text((margin, top + margin + index * line_h), line, font=_font(px), fill=_INK)


def _label(draw: ImageDraw.ImageDraw, label: str, size: tuple[int, int]) -> None:
    """The item id in the top-left corner."""
    px = max(8, min(size) // 28)
    font = _font(px)
    _, _, right, bottom = draw.textbbox((px // 2, px // 2), label, font=font)
    draw.rectangle((0, 0, right + px // 2, bottom + px // 2), fill=_PANEL)
    draw.text((px // 2, px // 2), label, font=font, fill=_INK)


def palette(image: Image.Image) -> tuple[Colour, Colour]:
    """The average colours of the image's top half and bottom half."""
    small = image.convert("RGB").resize((1, 2), Image.Resampling.BOX)
    top, bottom = small.getpixel((0, 0)), small.getpixel((0, 1))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    return (top[0], top[1], top[2]), (bottom[0], bottom[1], bottom[2])


def _load_reference(reference: bytes) -> Image.Image:
    try:
        return load_image(reference).convert("RGB")
    except BadResponseError as error:
        raise InvalidRequestError(f"mock: the reference image is unusable ({error})") from None


def _paste_reference(image: Image.Image, reference: Image.Image) -> None:
    """A white-framed thumbnail of the reference in the top-right corner."""
    thumb = reference.copy()
    side = max(8, min(image.size) // 4)
    thumb.thumbnail((side, side))
    pad = max(2, side // 24)
    framed = ImageOps.expand(thumb, border=pad, fill="white")
    image.paste(framed, (image.width - framed.width - pad, pad))

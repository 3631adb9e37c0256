"""A job's results as plain records, and as one contact sheet of its thumbnails.

Neither needs ipywidgets nor pandas: `results` gives dataclasses (`[r.__dict__ for r in rows]`
makes a table of them), `contact_sheet` a Pillow image, which Jupyter displays by itself.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ..errors import ConfigError
from ..records import ItemRecord
from ..states import ItemStatus
from ..storage import Workspace
from ..wording import reason

__all__ = ["Result", "draw_contact_sheet", "result_of"]

LABEL_PX = 30
GAP_PX = 6
BACKGROUND = (255, 255, 255)
TILE = (229, 231, 235)
TEXT = (17, 24, 39)
STATUS_RGB: dict[str, tuple[int, int, int]] = {
    ItemStatus.PENDING: (107, 114, 128),
    ItemStatus.RUNNING: (3, 105, 161),
    ItemStatus.COMPLETED: (21, 128, 61),
    ItemStatus.FAILED: (185, 28, 28),
    ItemStatus.CANCELLED: (180, 83, 9),
}


@dataclass(frozen=True)
class Result:
    """One image of a job, as the journal recorded it."""

    id: str
    status: str
    prompt: str
    path: Path | None
    """The processed image, once completed."""
    thumbnail: Path | None
    cost_usd: float | None
    attempts: int
    error: str | None
    """Why it failed, in words (`server error: ...`); None unless it failed."""
    width: int | None = None
    height: int | None = None
    cached: bool = False
    """The image came from the result cache: an earlier job paid for it, this one did not."""

    def image(self) -> Image.Image:
        """The image as a Pillow image (`ConfigError` when it has none)."""
        if self.path is None:
            raise ConfigError(f"item {self.id!r} has no image: it is {self.status}")
        with Image.open(self.path) as opened:
            opened.load()
            return opened


def result_of(item: ItemRecord, workspace: Workspace) -> Result:
    def path(rel: str | None) -> Path | None:
        return None if rel is None else workspace.absolute(rel)

    error = None
    if item.status == ItemStatus.FAILED and item.error is not None:
        error = f"{reason(item.error.kind)}: {item.error.message}"
    return Result(
        id=item.id,
        status=str(item.status),
        prompt=item.prompt,
        path=path(item.image_path) if item.status == ItemStatus.COMPLETED else None,
        thumbnail=path(item.thumb_path) if item.status == ItemStatus.COMPLETED else None,
        cost_usd=item.cost_usd,
        attempts=item.attempt_count,
        error=error,
        width=item.width,
        height=item.height,
        cached=item.cached_from is not None,
    )


async def draw_contact_sheet(rows: list[Result], *, columns: int, tile_px: int) -> Image.Image:
    """Every item as a tile (its thumbnail, or its status on grey) with its id and status
    below; drawn off the loop."""
    return await asyncio.to_thread(_draw, rows, max(1, columns), max(32, tile_px))


def _draw(rows: list[Result], columns: int, tile: int) -> Image.Image:
    columns = min(columns, max(1, len(rows)))
    lines = -(-len(rows) // columns) if rows else 1
    cell_w, cell_h = tile + GAP_PX, tile + LABEL_PX + GAP_PX
    sheet = Image.new("RGB", (columns * cell_w + GAP_PX, lines * cell_h + GAP_PX), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=12)
    for n, row in enumerate(rows):
        x = GAP_PX + (n % columns) * cell_w
        y = GAP_PX + (n // columns) * cell_h
        draw.rectangle((x, y, x + tile - 1, y + tile - 1), fill=TILE)
        picture = _thumbnail(row.thumbnail, tile)
        if picture is not None:
            sheet.paste(
                picture, (x + (tile - picture.width) // 2, y + (tile - picture.height) // 2)
            )
        else:
            draw.text((x + 8, y + tile // 2 - 6), row.status, fill=TEXT, font=font)
        colour = STATUS_RGB.get(row.status, TEXT)
        draw.text((x, y + tile + 2), _fit(draw, row.id, font, tile), fill=TEXT, font=font)
        draw.text((x, y + tile + 15), row.status, fill=colour, font=font)
    return sheet


def _thumbnail(path: Path | None, tile: int) -> Image.Image | None:
    if path is None:
        return None
    try:
        with Image.open(path) as opened:
            picture = opened.convert("RGB")
    except OSError:
        return None  # removed or unreadable: the tile shows the status instead
    picture.thumbnail((tile, tile))
    return picture


def _fit(
    draw: ImageDraw.ImageDraw,
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    width: int,
) -> str:
    """`text`, cut with an ellipsis to fit `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"

"""Pictures in the terminal, through textual-image: Sixel or the Kitty graphics protocol where
the terminal has them, coloured half-cell blocks elsewhere (tmux, most SSH sessions), Unicode
shading when the output is no terminal at all.

textual-image asks the terminal what it can do when it is first imported, which must happen
before Textual takes the terminal over: `picture_kind` is called by `make_app`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from PIL import Image

if TYPE_CHECKING:
    from textual_image.renderable._protocol import ImageRenderable
    from textual_image.widget._base import Image as PictureWidget

__all__ = ["PictureKind", "PictureMode", "load_picture", "picture_kind", "renderable_class"]

PictureMode = Literal["auto", "sixel", "kitty", "halfcell", "unicode"]
PictureKind = Literal["sixel", "kitty", "halfcell", "unicode"]
PREVIEW_PX = 512
"""Longest side of the picture the preview loads (more is wasted on a terminal)."""


def picture_kind(mode: PictureMode = "auto") -> PictureKind:
    """How pictures will be drawn: `mode`, or for `auto` the best this terminal has."""
    # textual-image logs a warning when the terminal does not say its cell size in pixels; it
    # then assumes one, which is all we need: keep the warning off the screen.
    logging.getLogger("textual_image").setLevel(logging.ERROR)
    from textual_image import renderable

    if mode != "auto":
        return mode
    detected: dict[type[object], PictureKind] = {
        renderable.SixelImage: "sixel",
        renderable.TGPImage: "kitty",
        renderable.HalfcellImage: "halfcell",
    }
    return detected.get(renderable.Image, "unicode")


def renderable_class(kind: PictureKind) -> type[ImageRenderable]:
    """The Rich renderable that draws a picture as `kind` says (not Sixel: see `sixel_widget`)."""
    from textual_image import renderable

    classes: dict[str, type[ImageRenderable]] = {
        "kitty": renderable.TGPImage,
        "halfcell": renderable.HalfcellImage,
        "unicode": renderable.UnicodeImage,
    }
    return classes[kind]


def sixel_widget() -> type[PictureWidget]:
    """Sixel goes around Textual's compositor, so it needs textual-image's own widget."""
    from textual_image.widget import SixelImage

    return SixelImage


def load_picture(path: Path, max_px: int = PREVIEW_PX) -> Image.Image:
    """The image at `path`, in RGB, scaled down to at most `max_px` a side (blocking: run it in a
    thread)."""
    with Image.open(path) as opened:
        picture = opened.convert("RGB")
    picture.thumbnail((max_px, max_px))
    return picture

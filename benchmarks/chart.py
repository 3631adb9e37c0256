"""The speed benchmark's chart: each scenario's ratios to the bound, as bars, drawn with Pillow.

One group of bars per scenario (imagebatch's span and whole process, the fixed-batch baseline,
the bare SDK), a line at 1.0 (the bound) and the value at the end of each bar, with the images
made when a variant did not make them all (a short bar then means lost images, not speed).
Bars longer than the axis are cut and marked with their value.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .speed_results import ScenarioResult

__all__ = ["draw_chart"]

SERIES = (
    ("imagebatch span", (33, 102, 172)),
    ("imagebatch process", (103, 169, 207)),
    ("fixed batches", (214, 96, 77)),
    ("bare SDK", (120, 120, 120)),
)
WIDTH, LABEL_W, RIGHT = 1000, 330, 70
BAR_H, GAP, TOP, BOTTOM = 11, 14, 64, 46
AXIS_MAX = 3.0


def draw_chart(results: Sequence[ScenarioResult], path: Path, title: str) -> None:
    """Write the chart of `results` as a PNG at `path`."""
    group_h = len(SERIES) * BAR_H + GAP
    height = TOP + BOTTOM + group_h * len(results)
    image = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    font, small = ImageFont.load_default(size=14), ImageFont.load_default(size=11)
    draw.text((12, 10), title, fill="black", font=font)
    _legend(draw, small)
    plot_w = WIDTH - LABEL_W - RIGHT
    for index, result in enumerate(results):
        top = TOP + index * group_h
        draw.text((12, top + 8), result.scenario.about, fill="black", font=small)
        values = (result.span, result.process, result.fixed, result.bare)
        variants = ("imagebatch", "imagebatch", "fixed", "bare")
        for row, ((_, colour), value) in enumerate(zip(SERIES, values, strict=True)):
            if value is None:
                continue
            y = top + row * BAR_H
            length = min(value, AXIS_MAX) / AXIS_MAX * plot_w
            draw.rectangle((LABEL_W, y, LABEL_W + length, y + BAR_H - 2), fill=colour)
            mark = f"{value:.2f}" + (" >" if value > AXIS_MAX else "")
            made, wanted = result.images(variants[row]), result.scenario.items
            if made is not None and made < wanted:
                mark += f" ({made:.0f}/{wanted} images)"
            draw.text((LABEL_W + length + 4, y - 1), mark, fill="black", font=small)
    _axis(draw, small, height, plot_w)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "PNG", optimize=True)


def _legend(draw: ImageDraw.ImageDraw, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> None:
    x = 12
    for name, colour in SERIES:
        draw.rectangle((x, 38, x + 12, 48), fill=colour)
        draw.text((x + 16, 36), name, fill="black", font=font)
        x += 30 + int(draw.textlength(name, font=font))


def _axis(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    height: int,
    plot_w: int,
) -> None:
    bottom = height - BOTTOM + 6
    for tick in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0):
        x = LABEL_W + tick / AXIS_MAX * plot_w
        colour = "black" if tick == 1.0 else (215, 215, 215)
        draw.line((x, TOP - 4, x, bottom), fill=colour, width=2 if tick == 1.0 else 1)
        draw.text((x - 8, bottom + 4), f"{tick:g}", fill="black", font=font)
    label = "makespan / lower bound (1.0 = the bound the provider allows)"
    draw.text((LABEL_W, bottom + 20), label, fill="black", font=font)

"""The job screen's log: the latest events, newest at the bottom, in a box of fixed height.

It shows the tail only (the whole history is in the journal: `imagebatch status`), and redraws
in place: a scrolling log grows its virtual size with every line, and each growth makes Textual
lay the whole screen out again, which costs far more than drawing a few lines.
"""

from __future__ import annotations

from collections import deque

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget

__all__ = ["EventLog"]

KEPT = 200
"""Lines kept for redrawing (more than any screen shows)."""


class EventLog(Widget):
    """The last lines written, wrapped to the width, as many as fit."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: deque[str] = deque(maxlen=KEPT)

    def write(self, lines: list[str]) -> None:
        if lines:
            self.lines.extend(lines)
            self.refresh()

    def render(self) -> RenderableType:
        width, height = self.content_region.width, self.content_region.height
        if width <= 0 or height <= 0:
            return ""
        shown: list[Text] = []
        for line in reversed(self.lines):  # from the newest, until the box is full
            wrapped = Text(line).wrap(self.app.console, width)
            shown[:0] = list(wrapped)
            if len(shown) >= height:
                break
        return Text("\n").join(shown[-height:])

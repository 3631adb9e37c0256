"""The job screen's table: one row per image, filtered by status, drawn line by line.

A `DataTable` re-renders every visible cell whenever any cell changes, which under a stream of
events costs about 100 ms a frame. This table keeps one rendered line (`Strip`) per row, made
again only when that row's texts or selection change, and asks Textual to repaint just that
line: a thousand-image job changing many rows a second stays cheap to draw. It scrolls by
itself (the keys, the mouse wheel) rather than through a virtual size, whose every change makes
Textual lay the whole screen out again; where the view is, the title says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from orchestrator import ItemStatus
from orchestrator.feed import ItemRow

from ..formats import STATUS_STYLES

__all__ = ["COLUMNS", "FILTERS", "ItemsTable"]

COLUMNS = ("id", "status", "attempts", "latency", "error", "cost", "cached")
LABELS = ("image", "status", "tries", "latency", "why", "cost", "cached")
WIDTHS = (12, 9, 5, 7, 20, 6, 6)
TOTAL_WIDTH = sum(WIDTHS) + 2 * len(WIDTHS)
FILTERS: tuple[str | None, ...] = (None, *(str(status) for status in ItemStatus))
"""The filter cycle: everything, then each status."""


class ItemsTable(Widget, can_focus=True):
    """One row per image under a header that stays put; a cursor selects one image."""

    DEFAULT_CSS = """
    ItemsTable > .items-table--header { text-style: bold; background: $panel; }
    ItemsTable > .items-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold;
    }
    """
    COMPONENT_CLASSES = {"items-table--header", "items-table--cursor"}
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "cursor(-1_000_000)", "First", show=False),
        Binding("end", "cursor(1_000_000)", "Last", show=False),
    ]

    status_filter: reactive[str | None] = reactive(None, init=False)
    """Show only images with this status; None shows every image."""

    @dataclass
    class Highlighted(Message):
        """The cursor moved to another image (many in a row coalesce: the latest wins)."""

        item_id: str | None

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ItemsTable.Highlighted)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: dict[str, ItemRow] = {}
        self._shown: list[str] = []
        self._positions: dict[str, int] = {}
        self._strips: dict[str, tuple[tuple[str, ...], bool, Strip]] = {}
        self.cursor = 0
        self.top = 0
        """The first row in view."""

    # ------------------------------------------------------------------ reads

    @property
    def selected_id(self) -> str | None:
        """The image under the cursor."""
        return self._shown[self.cursor] if self._shown else None

    @property
    def shown_ids(self) -> list[str]:
        """The images shown, in order."""
        return list(self._shown)

    @property
    def row_count(self) -> int:
        return len(self._shown)

    def cell(self, item_id: str, column: str) -> str:
        """The text a row shows in a column."""
        return self._rows[item_id].cells()[COLUMNS.index(column)]

    def shows(self, row: ItemRow) -> bool:
        return self.status_filter is None or row.status == self.status_filter

    # ----------------------------------------------------------------- writes

    def reload(self, rows: Iterable[ItemRow]) -> None:
        """Take every row again (a new snapshot), keeping the cursor on its image."""
        selected = self.selected_id
        self._rows = {row.id: row for row in rows}
        self._reshow(selected)

    def update_rows(self, rows: Iterable[ItemRow]) -> None:
        """Repaint the rows that changed; rows entering or leaving the filter come and go."""
        reshow = False
        for row in rows:
            self._rows[row.id] = row
            position = self._positions.get(row.id)
            if (position is not None) != self.shows(row):
                reshow = True
            elif position is not None:
                self._refresh_row(position)
        if reshow:
            self._reshow(self.selected_id)

    def select(self, item_id: str) -> None:
        """Put the cursor on an image that is shown."""
        self._move(self._positions[item_id])

    def watch_status_filter(self) -> None:
        self._reshow(self.selected_id)

    def _reshow(self, keep: str | None) -> None:
        """Work out the rows shown again; the cursor stays on `keep` if it is still shown."""
        self._shown = [item_id for item_id, row in self._rows.items() if self.shows(row)]
        self._positions = {item_id: n for n, item_id in enumerate(self._shown)}
        last = max(0, len(self._shown) - 1)
        self.cursor = self._positions[keep] if keep in self._positions else min(self.cursor, last)
        self.top = max(0, min(self.top, len(self._shown) - self._rows_in_view))
        self._scroll_to_cursor()
        self._title()
        self.refresh()
        if self.selected_id != keep or keep is None:
            self.post_message(self.Highlighted(self.selected_id))

    # ------------------------------------------------------------- the cursor

    def action_cursor(self, step: int) -> None:
        self._move(self.cursor + step)

    def action_page(self, pages: int) -> None:
        self._move(self.cursor + pages * max(1, self._rows_in_view - 1))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= 1:
            self._move(self.top + offset.y - 1)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        self._scroll(3)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self._scroll(-3)

    def _move(self, index: int) -> None:
        if not self._shown:
            return
        index = max(0, min(index, len(self._shown) - 1))
        if index != self.cursor:
            self._refresh_row(self.cursor)
            self.cursor = index
            self._refresh_row(index)
            self._scroll_to_cursor()
            self.post_message(self.Highlighted(self.selected_id))

    @property
    def _rows_in_view(self) -> int:
        return max(1, self.content_region.height - 1)

    def _scroll(self, rows: int) -> None:
        top = max(0, min(self.top + rows, len(self._shown) - self._rows_in_view))
        if top != self.top:
            self.top = top
            self._title()
            self.refresh()

    def _scroll_to_cursor(self) -> None:
        if self.cursor < self.top:
            self._scroll(self.cursor - self.top)
        elif self.cursor >= self.top + self._rows_in_view:
            self._scroll(self.cursor - self._rows_in_view + 1 - self.top)

    def _refresh_row(self, position: int) -> None:
        line = position - self.top + 1
        if 1 <= line <= self._rows_in_view:
            self.refresh(Region(0, line, self.content_region.width, 1))

    def _title(self) -> None:
        shown = "all" if self.status_filter is None else f"only {self.status_filter}"
        where = ""
        if len(self._shown) > self._rows_in_view:
            last = min(len(self._shown), self.top + self._rows_in_view)
            where = f", rows {self.top + 1}-{last}"
        self.border_title = f"images: {shown} ({len(self._shown)} of {len(self._rows)}{where})"

    def on_resize(self) -> None:
        self._scroll_to_cursor()
        self._title()

    # -------------------------------------------------------------- drawing

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def render_line(self, y: int) -> Strip:
        width = self.content_region.width
        if y == 0:
            strip = self._line(LABELS, self.get_component_rich_style("items-table--header"))
        else:
            index = self.top + y - 1
            if index >= len(self._shown):
                return Strip.blank(width, self.rich_style)
            strip = self._row_line(self._shown[index], index == self.cursor)
        return strip.crop_extend(0, width, self.rich_style)

    def _row_line(self, item_id: str, selected: bool) -> Strip:
        cells = self._rows[item_id].cells()
        cached = self._strips.get(item_id)
        if cached is not None and cached[0] == cells and cached[1] == selected:
            return cached[2]
        if selected:
            strip = self._line(cells, self.get_component_rich_style("items-table--cursor"))
        else:
            strip = self._line(cells, self.rich_style, status=cells[1])
        self._strips[item_id] = (cells, selected, strip)
        return strip

    def _line(self, texts: Iterable[str], style: Style, status: str | None = None) -> Strip:
        segments = []
        for column, text, width in zip(COLUMNS, texts, WIDTHS, strict=True):
            cell_style = style
            if column == "status" and status is not None:
                cell_style = style + Style.parse(STATUS_STYLES.get(status, "none"))
            segments.append(Segment(f" {_fit(text, width)} ", cell_style))
        return Strip(segments, TOTAL_WIDTH)


def _fit(text: str, width: int) -> str:
    """`text` in exactly `width` cells: padded, or cut with an ellipsis."""
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"

"""`BatchPanel`: the widgets of one batch, and how a job's feed is drawn on them.

The job's header on top, then the status filter and the page buttons, then a grid of item cards
showing one page (`page_size`) of the items that pass the filter. Cards are reused from page to
page; a card is drawn again only when its item changed or the page did, or when everything is to
be (`redraw_all`). The view (`view.py`) owns the job and its feed and gives the thumbnails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import ipywidgets as widgets

from ..feed import JobFeed
from .cards import PICTURE_PX, ItemAction, ItemCard, JobHeader

__all__ = ["FILTERS", "BatchPanel"]

FILTERS = ("all", "failed", "running", "pending", "completed", "cancelled")

Picture = Callable[[str], Awaitable[bytes | None]]
"""The thumbnail of an item by id (WebP bytes), or None."""


class BatchPanel:
    """The header, filter, page buttons and card grid of one batch, in one `widget`."""

    def __init__(
        self,
        page_size: int,
        header: JobHeader,
        *,
        on_retry: ItemAction,
        on_cancel: ItemAction,
        on_turn: Callable[[], None],
    ) -> None:
        self.page_size = max(1, page_size)
        self.page = 0
        self.header = header
        self.header.title.value = "recording the job…"
        self.cards: list[ItemCard] = []
        self.filter, self.previous, self.next, self.page_label = self._pager()
        self.grid = widgets.GridBox(
            layout=widgets.Layout(
                grid_template_columns=f"repeat(auto-fill, {PICTURE_PX + 20}px)",
                grid_gap="8px",
                margin="8px 0 0 0",
            )
        )
        self.grid.add_class("imagebatch-grid")
        pager = widgets.HBox([self.filter, self.previous, self.page_label, self.next])
        self.widget = widgets.VBox([self.header, pager, self.grid])
        self.widget.add_class("imagebatch-batch")
        self.redraw_all = True
        """Draw every card at the next draw, changed or not."""
        self.stopped = False
        """The view stopped following a job that no process runs any more: a job still said to
        be running is shown stopped."""
        self._actions = (on_retry, on_cancel)
        self._on_turn = on_turn
        self._drawing = asyncio.Lock()

    def _pager(self) -> tuple[widgets.Dropdown, widgets.Button, widgets.Button, widgets.Label]:
        """The status filter, the previous and next page buttons, and the page's label."""
        choice = widgets.Dropdown(options=FILTERS, value="all", description="show")
        choice.layout.width = "220px"
        choice.observe(lambda _: self.turn_to(0), names="value")
        previous = widgets.Button(icon="chevron-left", tooltip="Previous page")
        forward = widgets.Button(icon="chevron-right", tooltip="Next page")
        for button in (previous, forward):
            button.layout.width = "40px"
        previous.on_click(lambda _: self.turn_to(self.page - 1))
        forward.on_click(lambda _: self.turn_to(self.page + 1))
        return choice, previous, forward, widgets.Label()

    def turn_to(self, page: int) -> None:
        """Show page `page` (kept in range at the next draw), drawn all again soon."""
        self.page = page
        self.redraw_all = True
        self._on_turn()

    async def draw(self, feed: JobFeed, picture: Picture) -> None:
        """Draw the feed's tally in the header, and the page's cards that changed since the
        last draw (all of them after `redraw_all` or a reload); one draw at a time."""
        async with self._drawing:
            tally = feed.tally
            assert tally is not None
            changes = feed.take()
            redraw = self.redraw_all or changes.reloaded
            self.redraw_all = False
            stopped = self.stopped and feed.job_status == "running"
            self.header.show(tally, feed.job_status, time.time(), stopped=stopped)
            if changes.lines:
                self.header.last.value = changes.lines[-1]
            ids, matching = self._visible(feed)
            self._draw_pager(matching)
            while len(self.cards) < len(ids):
                self.cards.append(ItemCard(*self._actions))
                self.grid.children = tuple(self.cards)
            changed = {row.id for row in changes.rows}
            for card, item_id in zip(self.cards, ids, strict=False):
                if redraw or item_id in changed or card.item_id != item_id:
                    row = feed.rows[item_id]
                    thumb = await picture(item_id) if row.status == "completed" else None
                    card.show(feed.rows[item_id], thumb)  # the row may have moved on
            for card in self.cards[len(ids) :]:
                card.hide()

    def _visible(self, feed: JobFeed) -> tuple[list[str], int]:
        """The ids on the current page, and how many items pass the filter."""
        wanted = self.filter.value
        ids = [row.id for row in feed.rows.values() if wanted == "all" or row.status == wanted]
        pages = max(1, -(-len(ids) // self.page_size))
        self.page = min(max(self.page, 0), pages - 1)
        start = self.page * self.page_size
        return ids[start : start + self.page_size], len(ids)

    def _draw_pager(self, matching: int) -> None:
        pages = max(1, -(-matching // self.page_size))
        first = self.page * self.page_size + 1 if matching else 0
        last = min(matching, (self.page + 1) * self.page_size)
        self.page_label.value = f"{first}-{last} of {matching}"
        self.previous.disabled = self.page == 0
        self.next.disabled = self.page >= pages - 1

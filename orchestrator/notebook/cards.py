"""The widgets a batch is drawn with: one card per image, and the job's header.

Composed from ipywidgets only (no HTML strings, no front-end build), so they work in JupyterLab,
classic Notebook and VS Code alike. They hold no state of their own beyond what they show: the
view (`view.py`) tells them what to show and gets their clicks back through callbacks.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

from ..feed import ItemRow
from ..states import ItemStatus, JobStatus
from ..tally import Tally
from ..wording import counts_line, format_cost, format_latency, pace_line

__all__ = ["STATUS_COLOURS", "ItemCard", "JobHeader"]

STATUS_COLOURS: dict[str, str] = {
    ItemStatus.PENDING: "#6b7280",
    ItemStatus.RUNNING: "#0369a1",
    ItemStatus.COMPLETED: "#15803d",
    ItemStatus.FAILED: "#b91c1c",
    ItemStatus.CANCELLED: "#b45309",
    JobStatus.PARTIAL: "#b45309",
}
BAR_STYLES: dict[str, str] = {
    JobStatus.COMPLETED: "success",
    JobStatus.PARTIAL: "warning",
    JobStatus.FAILED: "danger",
    JobStatus.CANCELLED: "warning",
}
PICTURE_PX = 160
WAITING_WORDS: dict[str, str] = {
    ItemStatus.PENDING: "waiting",
    ItemStatus.RUNNING: "generating…",
    ItemStatus.FAILED: "no image",
    ItemStatus.CANCELLED: "cancelled",
    ItemStatus.COMPLETED: "loading…",
}

RETRY_TIP = "Try this image again"
MESSAGE_CHARS = 30
"""A card's width of small text (a label cuts longer text without an ellipsis)."""

ItemAction = Callable[[str], None]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(**style: str) -> widgets.Label:
    return widgets.Label(style=style, layout=widgets.Layout(margin="0", overflow="hidden"))


class ItemCard(widgets.VBox):  # type: ignore[misc]  # ipywidgets ships no type hints
    """One image: its picture once done, id, status, attempts, the error in words, and Retry /
    Cancel. A card shows whichever item the view gives it (the grid pages through items)."""

    def __init__(self, on_retry: ItemAction, on_cancel: ItemAction) -> None:
        self.item_id = ""
        self.picture, self.placeholder, self.frame = _picture_frame()
        self.name = _label(font_weight="bold")
        self.status = _label()
        self.detail = _label(text_color="#4b5563", font_size="12px")
        self.error = _label(text_color="#b91c1c", font_size="12px")
        self.message = _label(text_color="#b91c1c", font_size="11px")
        """The error's own words, cut to the card; Retry's tooltip has them whole."""
        self.retry, self.cancel = _card_buttons()
        self.retry.on_click(lambda _: on_retry(self.item_id))
        self.cancel.on_click(lambda _: on_cancel(self.item_id))
        super().__init__(
            [
                self.frame,
                self.name,
                self.status,
                self.detail,
                self.error,
                self.message,
                widgets.HBox([self.retry, self.cancel]),
            ],
            layout=widgets.Layout(
                width=f"{PICTURE_PX + 20}px", padding="6px", border="2px solid #d1d5db"
            ),
        )
        self.add_class("imagebatch-card")

    def show(self, row: ItemRow, picture: bytes | None) -> None:
        """Draw `row`; `picture` is its thumbnail (WebP bytes) once there is one."""
        self.item_id = row.id
        status = str(row.status)
        colour = STATUS_COLOURS.get(status, "#6b7280")
        self.name.value = row.id
        self.status.value = status + (" (cached)" if row.cached else "")
        self.status.style.text_color = colour
        self.layout.border = f"2px solid {colour}"
        self.detail.value = _detail(row)
        self.error.value = row.note
        self.message.value = _cut(row.error, MESSAGE_CHARS)
        for label in (self.error, self.message):
            label.layout.display = None if label.value else "none"  # no blank lines
        self.retry.tooltip = f"Try this image again ({row.error})" if row.error else RETRY_TIP
        if picture is not None:
            self.picture.value = picture
            self.frame.children = [self.picture]
        else:
            self.placeholder.value = WAITING_WORDS.get(status, status)
            self.frame.children = [self.placeholder]
        self.retry.disabled = row.status not in (ItemStatus.FAILED, ItemStatus.CANCELLED)
        self.cancel.disabled = row.status not in (ItemStatus.PENDING, ItemStatus.RUNNING)
        self.layout.display = None

    def hide(self) -> None:
        """No item for this card on the page."""
        self.item_id = ""
        self.layout.display = "none"


def _picture_frame() -> tuple[widgets.Image, widgets.Label, widgets.Box]:
    """A card's picture, the word shown until there is one, and the box that holds either."""
    picture = widgets.Image(
        format="webp",
        layout=widgets.Layout(
            width=f"{PICTURE_PX}px", height=f"{PICTURE_PX}px", object_fit="contain"
        ),
    )
    placeholder = widgets.Label(style={"text_color": "#6b7280"})
    frame = widgets.Box(
        [placeholder],
        layout=widgets.Layout(
            height=f"{PICTURE_PX}px", justify_content="center", align_items="center"
        ),
    )
    return picture, placeholder, frame


def _card_buttons() -> tuple[widgets.Button, widgets.Button]:
    """A card's Retry and Cancel buttons, side by side in one small layout."""
    small = widgets.Layout(width="auto", height="28px", flex="1 1 auto")
    retry = widgets.Button(description="Retry", icon="redo", tooltip=RETRY_TIP, layout=small)
    cancel = widgets.Button(
        description="Cancel", icon="stop", tooltip="Stop this image", layout=small
    )
    retry.add_class("imagebatch-retry")
    cancel.add_class("imagebatch-cancel")
    return retry, cancel


def _detail(row: ItemRow) -> str:
    """`attempt 2 · 1.23s · $0.040`."""
    parts = [f"attempt {row.attempts}" if row.attempts else "not started"]
    if row.latency_s is not None:
        parts.append(format_latency(row.latency_s))
    if row.cost_usd is not None:
        parts.append(format_cost(row.cost_usd))
    return " · ".join(parts)


class JobHeader(widgets.VBox):  # type: ignore[misc]
    """The job's title, a progress bar with the counts, pace, ETA and cost, the job's buttons
    (Retry failed, Stop, Cancel job), the last thing that happened and what a click did."""

    def __init__(
        self,
        on_retry_failed: Callable[[], None],
        on_cancel: Callable[[], None],
        on_stop: Callable[[], None],
    ) -> None:
        self.title = _label(font_weight="bold")
        self.bar = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="50%"))
        self.done = _label()
        self.counts = _label()
        self.pace = _label(text_color="#4b5563")
        self.last = _label(text_color="#4b5563", font_size="12px")
        self.message = _label(font_style="italic")
        self.retry_failed = widgets.Button(
            description="Retry failed", icon="redo", tooltip="Try every failed image again"
        )
        self.stop = widgets.Button(
            description="Stop",
            icon="pause",
            tooltip="Start nothing new; keep the images under way (they may be billed), then "
            "stop. The job can be resumed.",
        )
        self.cancel_job = widgets.Button(
            description="Cancel job", icon="stop", tooltip="Start nothing new; stop what runs"
        )
        self.retry_failed.add_class("imagebatch-retry-failed")
        self.stop.add_class("imagebatch-stop")
        self.cancel_job.add_class("imagebatch-cancel-job")
        self.retry_failed.on_click(lambda _: on_retry_failed())
        self.stop.on_click(lambda _: on_stop())
        self.cancel_job.on_click(lambda _: on_cancel())
        super().__init__(
            [
                self.title,
                widgets.HBox([self.bar, self.done]),
                self.counts,
                self.pace,
                widgets.HBox([self.retry_failed, self.stop, self.cancel_job, self.message]),
                self.last,
            ]
        )

    def show(self, tally: Tally, status: str, now: float, *, stopped: bool = False) -> None:
        """Draw the tally as it stands at `now`; `status` is the job's; `stopped`: the journal
        says running but no process runs the job any more (its process was killed)."""
        self.bar.max = max(tally.total, 1)
        self.bar.value = tally.done
        self.bar.bar_style = BAR_STYLES.get(status, "info" if status == "running" else "")
        self.done.value = f"{tally.done}/{tally.total} · {'stopped' if stopped else status}"
        self.counts.value = counts_line(tally, now, stopped=stopped)
        self.pace.value = pace_line(tally, now, stopped=stopped)
        failed = tally.count(ItemStatus.FAILED) + tally.count(ItemStatus.CANCELLED)
        self.retry_failed.disabled = failed == 0
        self.cancel_job.disabled = status not in (JobStatus.PENDING, JobStatus.RUNNING)
        self.stop.disabled = status != JobStatus.RUNNING or stopped

    def say(self, text: str) -> None:
        """What the last click did (or why it could not)."""
        self.message.value = text

"""The job screen's top block: a progress bar with the counts, the pace, the time left and the
cost, all read from the core's `Tally` (the numbers the CLI shows too)."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import ProgressBar

from orchestrator import ItemStatus, Tally

from ..formats import format_cost, format_duration

__all__ = ["JobProgress", "Line", "counts_line", "pace_line"]


class Line(Widget):
    """One line of text that changes often: redrawn in place, never laid out again (a `Label`
    asks for a new layout of the screen on every update)."""

    DEFAULT_CSS = "Line { height: 1; }"

    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.text = text

    def render(self) -> str:
        return self.text

    def show(self, text: str) -> None:
        if text != self.text:
            self.text = text
            self.refresh()


class JobProgress(Vertical):
    """Bar, `done/total`, counts by status, images/min, ETA, cost and what waits."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="bar-row"):
            yield ProgressBar(show_eta=False, id="bar")
            yield Line(id="done")
        yield Line("loading…", id="counts")
        yield Line(id="pace")

    def show(self, tally: Tally, status: str, now: float) -> None:
        """Draw the tally as it stands at `now`; `status` is the job's."""
        bar = self.query_one(ProgressBar)
        if (bar.total, bar.progress) != (max(tally.total, 1), tally.done):
            bar.update(total=max(tally.total, 1), progress=tally.done)
        self.query_one("#done", Line).show(f"{tally.done}/{tally.total} · {status}")
        self.query_one("#counts", Line).show(counts_line(tally, now))
        self.query_one("#pace", Line).show(pace_line(tally, now))


def counts_line(tally: Tally, now: float) -> str:
    """`8 completed · 3 running · 1 saving · 2 waiting · 1 failed · 4 retries`."""
    parts = [f"{tally.count(ItemStatus.COMPLETED)} completed", f"{len(tally.in_flight)} running"]
    optional = (
        (tally.saving, "saving"),
        (tally.count(ItemStatus.PENDING), "pending"),
        (tally.waiting(now), "waiting to retry"),
        (tally.count(ItemStatus.FAILED), "failed"),
        (tally.count(ItemStatus.CANCELLED), "cancelled"),
        (tally.retries, "retries"),
    )
    parts += [f"{count} {label}" for count, label in optional if count]
    return " · ".join(parts)


def pace_line(tally: Tally, now: float) -> str:
    """`12.0 images/min · ETA 1m05s · cost $0.42`, and why nothing moves when something waits."""
    rate = tally.images_per_minute(now)
    eta = tally.eta_s(now)
    parts = [
        f"{rate:.1f} images/min" if rate is not None else "images/min: -",
        "all done" if tally.done == tally.total else f"ETA {_eta(eta)}",
        f"cost {format_cost(tally.cost_usd, tally.unpriced)}",
    ]
    limit = tally.rate_limit_wait(now)
    if limit > 0:
        parts.append(f"waiting {math.ceil(limit)}s for the provider's rate limit")
    return " · ".join(parts)


def _eta(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)

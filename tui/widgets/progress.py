"""The job screen's top block: a progress bar with the counts, the pace, the time left and the
cost, all read from the core's `Tally` (the numbers the CLI shows too)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import ProgressBar

from orchestrator import Tally
from orchestrator.wording import counts_line, pace_line

__all__ = ["JobProgress", "Line"]


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

    def show(self, tally: Tally, status: str, now: float, *, stopped: bool = False) -> None:
        """Draw the tally as it stands at `now`; `status` is the job's; `stopped`: this app's
        run of it stopped on an error (the journal may still say running)."""
        bar = self.query_one(ProgressBar)
        if (bar.total, bar.progress) != (max(tally.total, 1), tally.done):
            bar.update(total=max(tally.total, 1), progress=tally.done)
        shown = "stopped" if stopped else status
        self.query_one("#done", Line).show(f"{tally.done}/{tally.total} · {shown}")
        self.query_one("#counts", Line).show(counts_line(tally, now, stopped=stopped))
        self.query_one("#pace", Line).show(pace_line(tally, now, stopped=stopped))

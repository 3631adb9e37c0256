"""The jobs screen's table: every job of the workspace, newest first, updated in place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import DataTable

from orchestrator import ItemStatus, JobRecord, JobStatus

from ..formats import format_age, format_cost, status_text

__all__ = ["JobLine", "JobsTable"]

COLUMNS = ("name", "key", "provider", "status", "done", "failed", "cost", "age", "runner")
WIDTHS = (22, 16, 14, 9, 7, 6, 7, 8, 9)
"""Each column's width when the terminal is wide enough for all (about 120 cells)."""
NAME_AT_LEAST = 12
"""The name column narrows to this before a column is left out."""
LEFT_OUT_FIRST = ("provider", "key", "age")
"""What a narrow terminal does without, in this order (the job screen shows them all)."""
_PADDING = 2  # a cell on each side of each column
_SCROLLBAR = 2


def layout(width: int) -> dict[str, int]:
    """The columns shown in `width` cells and the width of each: the name narrows first, then
    the columns of `LEFT_OUT_FIRST` are left out one by one (at 80 cells: provider and key)."""
    natural = dict(zip(COLUMNS, WIDTHS, strict=True))
    shown = list(COLUMNS)
    for leave_out in (None, *LEFT_OUT_FIRST):
        if leave_out is not None:
            shown.remove(leave_out)
        others = sum(natural[column] + _PADDING for column in shown if column != "name")
        name = min(natural["name"], width - _SCROLLBAR - _PADDING - others)
        if name >= NAME_AT_LEAST:
            break
    return {
        column: max(name, NAME_AT_LEAST) if column == "name" else natural[column]
        for column in shown
    }


@dataclass(frozen=True)
class JobLine:
    """A job and who runs it: `here`, `elsewhere`, `nobody` (resumable) or "" (finished)."""

    job: JobRecord
    runner: str

    def cells(self, now: float) -> tuple[str, ...]:
        job = self.job
        provider = job.config.provider + (f"/{job.config.model}" if job.config.model else "")
        failed = job.count(ItemStatus.FAILED)
        status = str(job.status)
        if job.status == JobStatus.RUNNING and self.runner == "nobody":
            status = "stopped"  # its run died (a crash, a full disk): resume it
        return (
            job.config.name or "-",
            job.key,
            provider,
            status,
            f"{job.count(ItemStatus.COMPLETED)}/{job.total}",
            str(failed) if failed else "",
            format_cost(job.cost_usd),
            format_age(now - job.created_at),
            self.runner,
        )


class JobsTable(DataTable[str | Text]):
    """One row per job, newest first."""

    @dataclass
    class Open(Message):
        """The user chose a job (enter or a click)."""

        job_id: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._order: list[str] = []
        self._cells: dict[str, tuple[str, ...]] = {}
        self._widths: dict[str, int] = {}

    def on_mount(self) -> None:
        self._lay_out()

    def on_resize(self) -> None:
        self._lay_out()

    def _lay_out(self) -> None:
        """Choose the columns for the table's width; a change redraws the table."""
        widths = layout(self.size.width)
        if widths == self._widths:
            return
        self._widths, selected = widths, self.selected_id
        self.clear(columns=True)
        for key, width in widths.items():
            self.add_column(key, key=key, width=width)
        self._redraw(self._order, self._cells, selected)

    @property
    def selected_id(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def show(self, lines: Sequence[JobLine], now: float) -> None:
        """Draw the jobs: rows change in place; a new job redraws the table, keeping the cursor."""
        lines = sorted(lines, key=lambda line: line.job.created_at, reverse=True)
        order = [line.job.id for line in lines]
        cells = {line.job.id: line.cells(now) for line in lines}
        if order != self._order:
            self._redraw(order, cells, self.selected_id)
        else:
            for job_id, new in cells.items():
                for key, before, after in zip(COLUMNS, self._cells[job_id], new, strict=True):
                    if before != after and key in self._widths:
                        self.update_cell(job_id, key, self._styled(key, after))
        self._order, self._cells = order, cells

    def _redraw(
        self, order: list[str], cells: dict[str, tuple[str, ...]], selected: str | None
    ) -> None:
        self.clear()
        for job_id in order:
            values = dict(zip(COLUMNS, cells[job_id], strict=True))
            self.add_row(*(self._styled(key, values[key]) for key in self._widths), key=job_id)
        if selected in cells:
            self.move_cursor(row=order.index(selected), animate=False)

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Open(event.row_key.value))

    def _styled(self, key: str, value: str) -> str | Text:
        """A cell as drawn: the status in its colour, a text cut with an ellipsis to fit."""
        if key == "status":
            return status_text(value)
        width = self._widths[key]
        return value if len(value) <= width else value[: width - 1] + "…"

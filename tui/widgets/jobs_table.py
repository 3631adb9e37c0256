"""The jobs screen's table: every job of the workspace, newest first, updated in place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import DataTable

from orchestrator import ItemStatus, JobRecord

from ..formats import format_age, format_cost, status_text

__all__ = ["JobLine", "JobsTable"]

COLUMNS = ("name", "key", "provider", "status", "done", "failed", "cost", "age", "runner")
WIDTHS = (22, 16, 14, 9, 7, 6, 7, 8, 11)


@dataclass(frozen=True)
class JobLine:
    """A job and who runs it: `here`, `elsewhere`, `nobody` (resumable) or "" (finished)."""

    job: JobRecord
    runner: str

    def cells(self, now: float) -> tuple[str, ...]:
        job = self.job
        provider = job.config.provider + (f"/{job.config.model}" if job.config.model else "")
        failed = job.count(ItemStatus.FAILED)
        return (
            job.config.name or "-",
            job.key,
            provider,
            str(job.status),
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

    def on_mount(self) -> None:
        for key, width in zip(COLUMNS, WIDTHS, strict=True):
            self.add_column(key, key=key, width=width)

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
            self._redraw(order, cells)
        else:
            for job_id, new in cells.items():
                for key, before, after in zip(COLUMNS, self._cells[job_id], new, strict=True):
                    if before != after:
                        self.update_cell(job_id, key, _styled(key, after))
        self._order, self._cells = order, cells

    def _redraw(self, order: list[str], cells: dict[str, tuple[str, ...]]) -> None:
        selected = self.selected_id
        self.clear()
        for job_id in order:
            self.add_row(
                *(_styled(k, v) for k, v in zip(COLUMNS, cells[job_id], strict=True)), key=job_id
            )
        if selected in cells:
            self.move_cursor(row=order.index(selected), animate=False)

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Open(event.row_key.value))


def _styled(key: str, value: str) -> str | Text:
    return status_text(value) if key == "status" else value

"""The job screen's table on its own: rows update in place, come and go with the filter, and
the cursor and the view stay on rows that exist."""

from __future__ import annotations

from dataclasses import replace

from textual.app import App, ComposeResult

from orchestrator import ItemStatus
from orchestrator.feed import ItemRow
from tui.widgets import ItemsTable


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield ItemsTable(id="items")


def rows(count: int, status: ItemStatus = ItemStatus.PENDING) -> list[ItemRow]:
    return [ItemRow(id=f"i{n:03d}", index=n, status=status) for n in range(count)]


async def test_rows_leaving_the_filter_under_the_cursor_keep_it_on_a_shown_row() -> None:
    app = TableApp()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.query_one(ItemsTable)
        table.reload(rows(50))
        table.status_filter = "pending"
        table.focus()
        await pilot.press("end")
        assert table.selected_id == "i049"
        assert "rows 40-50" in str(table.border_title)  # 11 rows under the header: followed
        done = [replace(row, status=ItemStatus.COMPLETED) for row in rows(50)[10:]]
        table.update_rows(done)  # forty rows leave the filter, the cursor's among them
        await pilot.pause()
        assert table.row_count == 10
        assert table.selected_id == "i009" and table.top == 0
        await pilot.press("up")
        assert table.selected_id == "i008"
        table.status_filter = None
        await pilot.pause()
        assert table.row_count == 50 and table.selected_id == "i008"
        assert table.cell("i020", "status") == "completed"


async def test_a_changed_row_is_redrawn_with_its_new_texts() -> None:
    app = TableApp()
    async with app.run_test(size=(100, 12)) as pilot:
        table = app.query_one(ItemsTable)
        table.reload(rows(3))
        await pilot.pause()
        before = table.render_line(2).text
        table.update_rows([replace(rows(3)[1], status=ItemStatus.FAILED, error_kind="timeout")])
        await pilot.pause()
        after = table.render_line(2).text
        assert "pending" in before and "failed" in after and "timed out" in after

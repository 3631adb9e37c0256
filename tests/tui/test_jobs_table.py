"""The jobs screen in a narrow terminal (a newcomer's is often 80 cells wide). In the table the
name narrows, then the provider and the key are left out, so the status, the cost and who runs
the job stay on screen; a wider window brings them back. The help fits too."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable

from orchestrator import JobStatus, Orchestrator, Workspace
from orchestrator.spec import parse_spec
from orchestrator.testing.scripted import ScriptedProvider, make_spec
from tui.screens import HelpScreen, JobsScreen
from tui.widgets import JobLine, JobsTable
from tui.widgets.jobs_table import COLUMNS, layout

from .helpers import tui_app, until

LONG_NAME = "the lighthouse keeper's cat, a story of twelve pages"


def drawn_width(widths: dict[str, int]) -> int:
    return sum(width + 2 for width in widths.values())


def test_each_width_shows_what_fits() -> None:
    assert list(layout(120)) == list(COLUMNS) and layout(120)["name"] == 22
    assert list(layout(110)) == list(COLUMNS)  # the name narrows first
    assert list(layout(100)) == [c for c in COLUMNS if c != "provider"]
    narrow = ["name", "status", "done", "failed", "cost", "age", "runner"]
    assert list(layout(80)) == narrow
    assert list(layout(60)) == [c for c in narrow if c != "age"]
    for width in (70, 80, 90, 100, 110, 120):
        assert drawn_width(layout(width)) + 2 <= width, width  # and room for a scrollbar
    assert drawn_width(layout(50)) > 50  # narrower than about 64: the table scrolls sideways


def column_keys(table: DataTable[Any]) -> list[str]:
    return [str(column.key.value) for column in table.ordered_columns]


async def test_an_80_cell_terminal_shows_status_cost_and_runner(workspace: Workspace) -> None:
    async with Orchestrator(workspace, env={}, providers={"scripted": ScriptedProvider()}) as orch:
        spec = make_spec(2, key="narrow").model_dump()
        spec["name"] = LONG_NAME
        job = await orch.submit(parse_spec(spec, "test"))
        await job.wait()
    app = tui_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, JobsScreen), "the jobs screen")
        table = app.screen.query_one(JobsTable)
        await until(pilot, lambda: table.row_count == 1, "the job is listed")
        assert column_keys(table) == ["name", "status", "done", "failed", "cost", "age", "runner"]
        name = str(table.get_cell(job.id, "name"))
        assert name.endswith("…") and LONG_NAME.startswith(name[:-1])
        assert len(name) == layout(80)["name"]
        assert str(table.get_cell(job.id, "status")) == "completed"
        assert table.get_cell(job.id, "done") == "2/2"
        assert table.virtual_size.width <= 80  # nothing to scroll sideways for

        await pilot.resize_terminal(120, 24)
        await until(pilot, lambda: column_keys(table) == list(COLUMNS), "every column")
        assert table.get_cell(job.id, "provider") == "scripted"
        assert table.get_cell(job.id, "key") == "narrow"
        assert table.row_count == 1 and table.selected_id == job.id


async def test_the_help_fits_an_80_cell_terminal(workspace: Workspace) -> None:
    app = tui_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, JobsScreen), "the jobs screen")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        await pilot.pause(0.1)
        box = app.screen.query_one("#help").region
        assert box.x >= 0 and box.right <= 80, box  # its right border on screen


async def test_a_running_job_nobody_runs_is_listed_as_stopped(workspace: Workspace) -> None:
    """After a crash (or a stop the journal could not record) the journal still says running;
    the list says stopped, so nobody waits for it."""
    async with Orchestrator(workspace, env={}, providers={"scripted": ScriptedProvider()}) as orch:
        job = await orch.submit(make_spec(1, key="crashed"))
        await job.wait()
        record = (await job.status()).model_copy(update={"status": JobStatus.RUNNING})
    assert JobLine(record, "nobody").cells(record.created_at)[3] == "stopped"
    assert JobLine(record, "elsewhere").cells(record.created_at)[3] == "running"
    assert JobLine(record, "here").cells(record.created_at)[3] == "running"

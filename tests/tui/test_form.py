"""The new-batch form and the jobs screen, driven as a person would with the real app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input, ProgressBar, Select, Static, TextArea

from orchestrator import Workspace
from orchestrator.testing.scripted import ScriptedProvider
from tui import ImageBatchApp
from tui.screens import JobsScreen, NewBatchScreen
from tui.widgets import JobProgress, JobsTable
from tui.widgets.progress import Line

from .helpers import FAST, SIZE, job_screen, statuses, tui_app, until


async def test_a_batch_started_from_the_form_runs_until_every_row_is_completed(
    workspace: Workspace,
) -> None:
    app = tui_app(workspace, processes=True)  # post-processing in worker processes, as for real
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewBatchScreen), "the form opens")
        form = app.screen
        form.query_one("#prompts", TextArea).text = "a red fox\n\n# skipped\na blue whale\na frog"
        form.query_one("#size", Input).value = "64x64"
        form.query_one("#options", Input).value = json.dumps(FAST)
        await pilot.press("ctrl+s")
        screen = await job_screen(pilot, app)
        want = {"item-001": "completed", "item-002": "completed", "item-003": "completed"}
        await until(pilot, lambda: statuses(screen) == want, "every row reaches completed")
        await until(
            pilot,
            lambda: "3/3" in screen.query_one("#done", Line).text,
            "the progress bar's counts say 3/3",
        )
        job = await screen.handle.status()
        assert job.status == "completed"
        assert job.config.defaults.size == "64x64"
        assert screen.query_one(JobProgress).query_one(ProgressBar).percentage == 1.0


async def test_a_refused_value_is_shown_on_its_field_and_nothing_starts(
    workspace: Workspace,
) -> None:
    app = tui_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewBatchScreen), "the form opens")
        form = app.screen
        form.query_one("#prompts", TextArea).text = "a red fox"
        form.query_one("#concurrency", Input).value = "500"
        await pilot.press("ctrl+s")
        error = form.query_one("#concurrency-error", Static)
        await until(pilot, lambda: "concurrency" in str(error.content), "the error is shown")
        assert "from 1 to 64, or 'auto'" in str(error.content)
        assert form.query_one("#concurrency", Input).has_class("-error")
        assert app.screen is form  # still on the form
        assert await app.session.orchestrator.jobs() == []  # type: ignore[union-attr]

        form.query_one("#concurrency", Input).value = ""
        form.query_one("#prompts", TextArea).text = ""
        await pilot.press("ctrl+s")
        prompts_error = form.query_one("#prompts-error", Static)
        await until(pilot, lambda: "items" in str(prompts_error.content), "no prompts refused")
        assert str(error.content) == ""  # the earlier error went


async def test_a_missing_key_says_what_to_do_on_the_provider_field(workspace: Workspace) -> None:
    app = tui_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewBatchScreen), "the form opens")
        form = app.screen
        form.query_one("#prompts", TextArea).text = "a red fox"
        form.query_one("#provider").value = "openai"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        error = form.query_one("#provider-error", Static)
        await until(pilot, lambda: "OPENAI_API_KEY" in str(error.content), "the key is named")
        assert "imagebatch tui" in str(error.content)  # restart with the key set
        assert "mock" in str(error.content)


async def test_an_empty_workspace_offers_the_demo_and_new_jobs_appear_live(
    workspace: Workspace,
) -> None:
    app = tui_app(workspace)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, JobsScreen), "the jobs screen")
        jobs = app.screen
        empty = jobs.query_one("#empty", Static)
        await until(pilot, lambda: "demo batch" in str(empty.content), "the demo is offered")
        assert jobs.has_class("-empty")
        await pilot.press("d")
        screen = await job_screen(pilot, app)
        await until(
            pilot,
            lambda: len(statuses(screen)) == 12 and set(statuses(screen).values()) == {"completed"},
            "the demo's twelve pages complete",
        )
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is jobs, "back on the jobs screen")
        table = jobs.query_one(JobsTable)
        await until(
            pilot,
            lambda: table.row_count == 1 and table.get_cell(screen.handle.id, "done") == "12/12",
            "the demo job is listed, done",
        )
        assert not jobs.has_class("-empty")
        assert str(table.get_cell(screen.handle.id, "status")) == "completed"


async def test_a_spec_file_from_the_workspace_folder_runs_and_its_key_is_kept(
    workspace: Workspace,
) -> None:
    spec = {
        "key": "story-7",
        "provider": "scripted",
        "output": {"format": "png", "thumbnail_px": 32},
        "items": [{"id": "p1", "prompt": "a cat"}, {"id": "p2", "prompt": "a dog"}],
    }
    spec_path = workspace.root.parent / "story.json"
    spec_path.write_text(json.dumps(spec))
    provider = ScriptedProvider({"p1": ["hang"]})
    app = tui_app(workspace, providers={"scripted": provider})
    async with app.run_test(size=SIZE) as pilot:
        await submit_spec_file(pilot, app, spec_path)
        screen = await job_screen(pilot, app)
        want = {"p1": "running", "p2": "completed"}
        await until(pilot, lambda: statuses(screen) == want, "the spec's images run")
        assert (await screen.handle.status()).key == "story-7"
        await pilot.press("escape")
        form = await submit_spec_file(pilot, app, spec_path)  # again, while the first runs
        error = form.query_one("#name-error", Static)
        await until(pilot, lambda: "story-7" in str(error.content), "the conflict is explained")
        assert "unfinished job" in str(error.content) and "Open job" in str(error.content)


async def submit_spec_file(pilot: Pilot[Any], app: ImageBatchApp, path: Path) -> NewBatchScreen:
    """Open the form, pick the spec file, start it; the form."""
    await pilot.press("n")
    await until(pilot, lambda: isinstance(app.screen, NewBatchScreen), "the form opens")
    form = app.screen
    assert isinstance(form, NewBatchScreen)
    files = form.query_one("#spec_file", Select)
    await until(pilot, lambda: str(path) in _values(files), "the spec file is offered")
    files.value = str(path)
    await pilot.press("ctrl+s")
    return form


def _values(select: Select[str]) -> list[str]:
    return [str(value) for _, value in select._options]  # what the list offers

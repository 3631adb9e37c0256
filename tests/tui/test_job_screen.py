"""The job screen on jobs this app runs: retry, cancel, preview, filter, and errors in words.

The scripted provider decides every answer, so a failure happens exactly where a test wants it
and a retry can then succeed."""

from __future__ import annotations

import errno
from typing import Any

import pytest
from PIL import Image as PILImage
from rich.text import Text
from textual.pilot import Pilot
from textual_image.renderable import HalfcellImage

from orchestrator import JobHandle, JobSpec, Workspace, storage
from orchestrator.errors import UnavailableError
from orchestrator.testing.scripted import ScriptedProvider, make_spec, png_bytes
from tui import ImageBatchApp
from tui.messages import JobLaunched
from tui.screens import ConfirmScreen, JobScreen, JobsScreen
from tui.screens import job as job_module
from tui.widgets import ItemsTable, JobProgress, JobsTable, Preview
from tui.widgets.progress import Line

from .helpers import (
    SIZE,
    cell,
    job_screen,
    notifications,
    press_on,
    select,
    statuses,
    tui_app,
    until,
)


async def open_job(app: ImageBatchApp, pilot: Pilot[Any], job_id: str) -> JobScreen:
    """Open a job from the jobs screen, as a person does: its row, then enter."""
    await until(pilot, lambda: isinstance(app.screen, JobsScreen), "the jobs screen")
    table = app.screen.query_one(JobsTable)
    await until(pilot, lambda: job_id in [key.value for key in table.rows], "the job is listed")
    table.focus()
    table.move_cursor(row=table.get_row_index(job_id))
    await pilot.press("enter")
    return await job_screen(pilot, app)


async def submit_and_open(
    app: ImageBatchApp, pilot: Pilot[Any], spec: JobSpec
) -> tuple[JobHandle, JobScreen]:
    """Submit `spec` to the app's orchestrator (it runs here), then open its job screen."""
    assert app.session is not None
    handle = await app.session.orchestrator.submit(spec)
    return handle, await open_job(app, pilot, handle.id)


def running_app(workspace: Workspace, provider: ScriptedProvider) -> ImageBatchApp:
    return tui_app(workspace, providers={"scripted": provider})


async def test_a_failed_image_retried_from_the_table_completes(workspace: Workspace) -> None:
    provider = ScriptedProvider({"i1": [UnavailableError("the server fell over")]})
    app = running_app(workspace, provider)
    async with app.run_test(size=SIZE) as pilot:
        handle, screen = await submit_and_open(app, pilot, make_spec(3, max_attempts=1))
        want = {"i0": "completed", "i1": "failed", "i2": "completed"}
        await until(pilot, lambda: statuses(screen) == want, "i1 fails, the others complete")
        table = screen.query_one(ItemsTable)
        assert cell(table, "i1", "error") == "server error"
        await press_on(pilot, screen, "i1", "r")
        await until(pilot, lambda: statuses(screen)["i1"] == "completed", "the retry completes")
        assert cell(table, "i1", "attempts") == "2"
        assert len(provider.calls_for("i1")) == 2
        assert (await handle.status()).status == "completed"
        assert any("retrying i1" in note for note in notifications(app))


async def test_the_preview_of_a_retried_image_shows_it_once_it_completes(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image under the cursor is retried and completes as its job ends: the job's end
    reloads every row at once, and the preview said "running, no image yet" until the cursor
    moved away and back. (Draws are spaced out here so that the image's completion and the
    job's end reach the screen in one draw, as they did on a terminal.)"""
    monkeypatch.setattr(job_module, "DRAW_EVERY_S", 1.0)
    provider = ScriptedProvider(
        {"i1": [UnavailableError("the server fell over")]},
        image=png_bytes(64, 48, "orange"),
        latency_s=0.3,  # the retry is seen running first
    )
    app = running_app(workspace, provider)
    async with app.run_test(size=SIZE) as pilot:
        _, screen = await submit_and_open(app, pilot, make_spec(2, max_attempts=1))
        await until(pilot, lambda: statuses(screen)["i1"] == "failed", "i1 fails")
        await press_on(pilot, screen, "i1", "r")
        await until(pilot, lambda: statuses(screen)["i1"] == "completed", "the retry completes")
        preview = screen.query_one(Preview)
        await until(pilot, lambda: preview.border_subtitle == "i1 · 64x48", "its image is shown")
        assert screen.query_one(ItemsTable).selected_id == "i1"  # the cursor never moved


async def test_retrying_an_image_that_did_not_fail_says_why_in_words(workspace: Workspace) -> None:
    app = running_app(workspace, ScriptedProvider())
    async with app.run_test(size=SIZE) as pilot:
        _, screen = await submit_and_open(app, pilot, make_spec(2))
        await until(pilot, lambda: set(statuses(screen).values()) == {"completed"}, "done")
        await press_on(pilot, screen, "i0", "r")
        await until(
            pilot,
            lambda: any("only failed or cancelled" in note for note in notifications(app)),
            "a notification says only failed or cancelled images can be retried",
        )


async def test_cancel_one_image_then_the_whole_job(workspace: Workspace) -> None:
    provider = ScriptedProvider({f"i{n}": ["hang"] for n in range(4)})
    app = running_app(workspace, provider)
    async with app.run_test(size=SIZE) as pilot:
        handle, screen = await submit_and_open(app, pilot, make_spec(4, concurrency=2))
        await until(pilot, lambda: statuses(screen)["i0"] == "running", "i0 runs")
        await press_on(pilot, screen, "i0", "x")
        await until(pilot, lambda: statuses(screen)["i0"] == "cancelled", "i0 is cancelled")
        assert statuses(screen)["i1"] == "running"  # the others go on
        assert (await handle.status()).status == "running"
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "asked to confirm")
        await pilot.press("y")
        await until(pilot, lambda: set(statuses(screen).values()) == {"cancelled"}, "all cancelled")
        await until(pilot, lambda: "cancelled" in screen.query_one("#done", Line).text, "shown")
        assert (await handle.status()).status == "cancelled"


async def test_no_to_the_question_leaves_the_job_running(workspace: Workspace) -> None:
    provider = ScriptedProvider({"i0": ["hang"]})
    app = running_app(workspace, provider)
    async with app.run_test(size=SIZE) as pilot:
        handle, screen = await submit_and_open(app, pilot, make_spec(1))
        await until(pilot, lambda: statuses(screen)["i0"] == "running", "i0 runs")
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "asked to confirm")
        await pilot.press("n")
        await until(pilot, lambda: app.screen is screen, "back on the job")
        await pilot.pause(0.3)
        assert statuses(screen)["i0"] == "running"
        assert not (await handle.status()).cancel_requested


async def test_the_preview_shows_the_image_in_half_cells_and_toggles_to_the_prompts(
    workspace: Workspace,
) -> None:
    provider = ScriptedProvider(image=png_bytes(64, 48, "orange"))
    app = running_app(workspace, provider)
    async with app.run_test(size=SIZE) as pilot:
        _, screen = await submit_and_open(app, pilot, make_spec(2))
        await until(pilot, lambda: set(statuses(screen).values()) == {"completed"}, "done")
        await select(pilot, screen, "i1")
        preview = screen.query_one(Preview)
        await until(pilot, lambda: preview.border_subtitle == "i1 · 64x48", "the image is shown")
        assert isinstance(preview.picture, PILImage.Image)
        assert preview.picture.getpixel((0, 0)) == (255, 165, 0)  # the orange picture itself
        assert isinstance(preview.render(), HalfcellImage)  # drawn in coloured half-cells

        await pilot.press("p")
        await until(pilot, lambda: preview.has_class("-prompt"), "the prompt pane shows")
        shown = preview.render()
        assert isinstance(shown, Text) and "prompt 1" in shown.plain
        assert "Final prompt sent" in shown.plain
        await pilot.press("p")
        await until(pilot, lambda: isinstance(preview.render(), HalfcellImage), "the image again")


async def test_the_filter_shows_only_one_status_at_a_time(workspace: Workspace) -> None:
    failing = UnavailableError("down")
    provider = ScriptedProvider({"i1": [failing], "i3": [failing]})
    app = running_app(workspace, provider)
    async with app.run_test(size=SIZE) as pilot:
        _, screen = await submit_and_open(app, pilot, make_spec(5, max_attempts=1))
        await until(pilot, lambda: "running" not in statuses(screen).values(), "done")
        await until(pilot, lambda: len(statuses(screen)) == 5, "five rows")
        table = screen.query_one(ItemsTable)
        seen = {}
        for _ in range(len(("pending", "running", "completed", "failed", "cancelled"))):
            await pilot.press("f")
            await pilot.pause()
            seen[table.status_filter] = sorted(statuses(screen))
        assert seen["failed"] == ["i1", "i3"]
        assert seen["completed"] == ["i0", "i2", "i4"]
        assert seen["pending"] == [] and seen["cancelled"] == []
        assert "only failed" not in (table.border_title or "")
        await pilot.press("f")  # back to every image
        assert table.status_filter is None and len(statuses(screen)) == 5

        screen.show_only("failed")  # what the command palette's "Show only failed" does
        await pilot.pause()
        assert sorted(statuses(screen)) == ["i1", "i3"]
        assert "only failed (2 of 5)" in (table.border_title or "")

        preview = screen.query_one(Preview)
        screen.show_only("completed")
        await until(pilot, lambda: preview.picture is not None, "a completed image is shown")
        screen.show_only("cancelled")  # nothing matches: nothing is previewed
        await until(pilot, lambda: preview.picture is None, "the preview empties")
        assert preview.note == "no image selected"


async def test_a_lost_lock_is_a_notification_saying_what_happened(workspace: Workspace) -> None:
    provider = ScriptedProvider({"i0": ["held"]})
    app = running_app(workspace, provider)
    async with app.run_test(size=SIZE) as pilot:
        assert app.session is not None
        orchestrator = app.session.orchestrator
        handle = await orchestrator.submit(make_spec(1, key="story-9"))
        screen = await open_job(app, pilot, handle.id)
        await until(pilot, lambda: statuses(screen)["i0"] == "running", "i0 runs")
        await orchestrator.clear_lock("story-9")  # as `imagebatch clear-lock` would
        provider.gate.set()  # the image arrives; writing it is refused
        await until(
            pilot,
            lambda: any("took job" in note for note in notifications(app)),
            "a notification explains the lost lock",
        )
        note = next(note for note in notifications(app) if "took job" in note)
        assert handle.id in note and "retry or resume" in note
        assert app.is_running  # no crash


async def test_a_run_stopped_by_a_full_disk_shows_stopped_not_running(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once this app's run stops on an error, the job's screen says so and stops counting down
    (the journal still says running: the disk took no more writes). Before, the header showed
    the items in flight as running and an ETA that kept moving."""
    real_open = open
    allowed = {"files": 3 * 3}  # raw, processed and thumbnail of three images

    def full(path: Any, *args: Any, **kwargs: Any) -> Any:
        if allowed["files"] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        allowed["files"] -= 1
        return real_open(path, *args, **kwargs)

    provider = ScriptedProvider(latency_s=0.3)
    app = running_app(workspace, provider)
    async with app.run_test(size=SIZE) as pilot:
        assert app.session is not None
        handle = await app.session.orchestrator.submit(make_spec(24, concurrency=2))
        app.post_message(JobLaunched(handle.id))  # as the app's own ways to run a job do
        screen = await open_job(app, pilot, handle.id)
        await until(pilot, lambda: "completed" in statuses(screen).values(), "an image done")
        monkeypatch.setattr(storage, "open", full, raising=False)
        await until(pilot, lambda: screen.stopped, "the screen hears that the run stopped")
        await pilot.pause(0.1)
        progress = screen.query_one(JobProgress)
        shown = [str(line.render()) for line in progress.query(Line)]
        assert shown[0].endswith("· stopped"), shown
        assert "running" not in shown[1] and "ETA" not in shown[2], shown
        assert "stopped: resume to go on" in shown[2]
        assert any("Could not run job" in note and "is full" in note for note in notifications(app))
        assert (await handle.status()).status == "running"  # resumable

        monkeypatch.setattr(storage, "open", real_open, raising=False)
        await pilot.press("escape")
        again = await open_job(app, pilot, handle.id)
        assert again.stopped  # a screen opened after the stop knows it too
        await pilot.press("s")  # resume
        await until(pilot, lambda: not again.stopped, "a new run clears it")
        await until(pilot, lambda: set(statuses(again).values()) == {"completed"}, "all done")


async def test_stop_lets_the_images_under_way_finish_and_leaves_the_job_resumable(
    workspace: Workspace,
) -> None:
    """S asks the job's run to start no new request: the two images under way are kept (they
    may be billed; X would throw them away), the rest stay pending for a resume."""
    provider = ScriptedProvider(latency_s=3.0)
    app = running_app(workspace, provider)
    async with app.run_test(size=SIZE) as pilot:
        handle, screen = await submit_and_open(app, pilot, make_spec(6, concurrency=2))
        assert app.session is not None
        orchestrator = app.session.orchestrator
        await until(pilot, lambda: statuses(screen)["i0"] == "running", "the screen shows i0 run")
        assert [call.item_id for call in provider.calls] == ["i0", "i1"]
        await pilot.press("S")
        await until(pilot, lambda: not orchestrator.runners, "the run ended")
        assert any("stop requested" in note for note in notifications(app))
        items = {item.id: item.status for item in await handle.items()}
        assert items == {
            "i0": "completed",
            "i1": "completed",
            **{f"i{n}": "pending" for n in range(2, 6)},
        }
        assert len(provider.calls) == 2
        assert (await handle.status()).status == "pending"  # resumable
        await pilot.press("S")
        await until(
            pilot,
            lambda: any("nothing to stop" in note for note in notifications(app)),
            "a second S says nothing runs the job",
        )

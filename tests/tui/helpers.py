"""Helpers for driving the real app under `App.run_test()`: make it on a test workspace, wait for
what the screen shows, read the table and the notifications."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from textual.pilot import Pilot

from orchestrator import Orchestrator, Workspace
from orchestrator.pipeline import PipelineSettings
from orchestrator.providers.base import ProviderFactory
from orchestrator.stages import PostStage
from tui import ImageBatchApp, make_app
from tui.screens import JobScreen
from tui.widgets import ItemsTable

SIZE = (160, 48)
WAIT_S = 30.0
FAST = {"seed": 1, "latency_mean_s": 0.05, "latency_distribution": "fixed"}
"""Mock options for quick jobs."""
OUTPUT = {"format": "png", "thumbnail_px": 32}
"""Small, quick post-processing."""


def tui_app(
    workspace: Workspace,
    *,
    providers: Mapping[str, ProviderFactory] | None = None,
    processes: bool = False,
    now: Callable[[], float] = time.time,
) -> ImageBatchApp:
    """The app on `workspace`, drawing pictures in half-cells, with quick request polling and
    post-processing in threads (or worker processes, as the CLI uses them)."""

    def orchestrator() -> Orchestrator:
        return Orchestrator(
            workspace,
            env={},
            settings=PipelineSettings(seed=1, request_poll_s=0.05),
            providers=providers,
            post=PostStage(2, processes=processes),
        )

    return make_app(workspace, env={}, pictures="halfcell", now=now, orchestrator=orchestrator)


async def until(
    pilot: Pilot[Any], check: Callable[[], bool], what: str, within_s: float = WAIT_S
) -> None:
    """Let the app run until `check()` holds; fail saying `what` did not happen."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"within {within_s}s: {what}")
        await pilot.pause(0.05)


def cell(table: ItemsTable, item_id: str, column: str) -> str:
    return table.cell(item_id, column)


def statuses(screen: JobScreen) -> dict[str, str]:
    """Each shown row's status, as the table shows it."""
    table = screen.query_one(ItemsTable)
    return {item_id: table.cell(item_id, "status") for item_id in table.shown_ids}


def notifications(app: ImageBatchApp) -> list[str]:
    """Every notification's title and message, as shown."""
    return [f"{note.title}: {note.message}" for note in app._notifications]


async def select(pilot: Pilot[Any], screen: JobScreen, item_id: str) -> None:
    """Put the table's cursor on an image."""
    table = screen.query_one(ItemsTable)
    table.focus()
    table.select(item_id)
    await until(pilot, lambda: table.selected_id == item_id, f"cursor on {item_id}")


async def press_on(pilot: Pilot[Any], screen: JobScreen, item_id: str, key: str) -> None:
    """Select an image, then press a key on it, as a person does."""
    await select(pilot, screen, item_id)
    await pilot.press(key)


async def job_screen(pilot: Pilot[Any], app: ImageBatchApp) -> JobScreen:
    await until(pilot, lambda: isinstance(app.screen, JobScreen), "the job screen opens")
    screen = app.screen
    assert isinstance(screen, JobScreen)
    return screen

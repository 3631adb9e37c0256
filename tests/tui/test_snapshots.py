"""Snapshots of the jobs screen, the job screen with a preview, and the form with a refused
value (pytest-textual-snapshot; `pytest --snapshot-update` accepts new pictures after a look).

Everything on screen is fixed: the jobs are run while the wall clock stands still (so every
time, age and latency is the same), job ids and keys come from a counter instead of random
tokens, the mock draws from fixed seeds one image at a time, the app's clock is frozen too and
local time is UTC.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static, TextArea

from orchestrator import Orchestrator, Workspace, parse_spec
from orchestrator.stages import PostStage
from tui.screens import JobsScreen, NewBatchScreen
from tui.widgets import JobsTable, Preview

from .helpers import OUTPUT, job_screen, tui_app, until

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
SIZE = (120, 36)


class StillClock:
    """A clock whose time does not move (sleeps are real)."""

    def monotonic(self) -> float:
        return 1000.0

    def time(self) -> float:
        return T0

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@pytest.fixture
def fixed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """A workspace under the current folder, ids from a counter, UTC."""
    counter = itertools.count(1)
    monkeypatch.setattr("secrets.token_hex", lambda n=16: f"{next(counter):0{2 * n}x}")
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.chdir(tmp_path)
    yield Workspace(tmp_path / ".imagebatch")
    time.tzset()


def spec(key: str, name: str, prompts: list[str], **options: Any) -> Any:
    return parse_spec(
        {
            "key": key,
            "name": name,
            "provider": "mock",
            "provider_options": {
                **{"seed": 1, "latency_mean_s": 0.2, "latency_distribution": "fixed"},
                **options,
            },
            "defaults": {"size": "96x64"},
            "limits": {"concurrency": 1, "max_attempts": 1},
            "output": OUTPUT,
            "items": [{"id": f"page-{n}", "prompt": p} for n, p in enumerate(prompts, 1)],
        },
        "snapshot",
    )


def run_jobs(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two finished jobs, run while the wall clock stands at `T0`."""
    with monkeypatch.context() as frozen:
        frozen.setattr(time, "time", lambda: T0)
        asyncio.run(_run_jobs(workspace))


async def _run_jobs(workspace: Workspace) -> None:
    """A partial picture book (its first page refused) and a completed deck."""
    async with Orchestrator(
        workspace, env={}, clock=StillClock(), post=PostStage(1, processes=False)
    ) as orchestrator:
        book = spec(
            "book-1",
            "the lighthouse cat",
            ["a storm at sea (forbidden)", "a cat on a lighthouse", "a paper boat"],
            reject_pattern="forbidden",
        )
        await (await orchestrator.submit(book)).wait()
        deck = spec("deck-2", "quarterly deck", ["a bar chart", "a rocket"])
        await (await orchestrator.submit(deck)).wait()


def snapshot_app(workspace: Workspace) -> Any:
    return tui_app(workspace, now=lambda: T0 + 3 * 3600)


def test_the_jobs_screen(
    fixed: Workspace, snap_compare: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_jobs(fixed, monkeypatch)

    async def listed(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, JobsScreen), "jobs")
        table = pilot.app.screen.query_one(JobsTable)
        await until(pilot, lambda: table.row_count == 2, "both jobs listed")

    assert snap_compare(snapshot_app(fixed), terminal_size=SIZE, run_before=listed)


def test_the_job_screen_with_a_preview(
    fixed: Workspace, snap_compare: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_jobs(fixed, monkeypatch)

    async def opened(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, JobsScreen), "jobs")
        table = pilot.app.screen.query_one(JobsTable)
        await until(pilot, lambda: table.row_count == 2, "both jobs listed")
        book = next(str(key.value) for key in table.rows if str(key.value).startswith("book"))
        table.move_cursor(row=table.get_row_index(book))
        await pilot.press("enter")
        screen = await job_screen(pilot, pilot.app)  # type: ignore[arg-type]
        preview = screen.query_one(Preview)
        await pilot.press("down")  # page-2, the first image made
        await until(pilot, lambda: preview.border_subtitle == "page-2 · 96x64", "the preview")

    assert snap_compare(snapshot_app(fixed), terminal_size=SIZE, run_before=opened)


def test_the_form_with_a_refused_value(fixed: Workspace, snap_compare: Any) -> None:
    async def refused(pilot: Pilot[Any]) -> None:
        await pilot.press("n")
        await until(pilot, lambda: isinstance(pilot.app.screen, NewBatchScreen), "the form")
        form = pilot.app.screen
        form.query_one("#prompts", TextArea).text = "a red fox\na blue whale"
        form.query_one("#concurrency", Input).value = "0"
        await pilot.press("ctrl+s")
        error = form.query_one("#concurrency-error", Static)
        await until(pilot, lambda: "concurrency" in str(error.content), "the refusal")
        for field in [*form.query(Input), *form.query(TextArea)]:
            field.cursor_blink = False  # a steady cursor: on a busy machine the snapshot could
        await pilot.pause()  # come half a second after the focus, in the blink's other phase

    assert snap_compare(snapshot_app(fixed), terminal_size=SIZE, run_before=refused)

"""Following a job that a separate `imagebatch run` process runs, and a retry from the app that
the other process carries out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from orchestrator import Workspace
from orchestrator.errors import UnavailableError
from orchestrator.providers.base import GenerateRequest, ProviderConfig
from orchestrator.providers.mock import MockProvider
from orchestrator.storage import ENV_VAR
from tui import ImageBatchApp
from tui.screens import JobScreen, JobsScreen
from tui.widgets import ItemsTable, JobProgress, JobsTable
from tui.widgets.progress import Line

from .helpers import SIZE, cell, job_screen, press_on, statuses, tui_app, until

ITEMS = 40
FLAKY = {"latency_mean_s": 0.25, "latency_distribution": "fixed", "rate_500": 0.5}


async def fails_then_succeeds(seed: int, item_id: str, prompt: str) -> bool:
    """The mock's first attempt at this item is a 500 and its second is an image."""
    mock = MockProvider(ProviderConfig(options={**FLAKY, "seed": seed, "latency_mean_s": 0}))
    outcomes = []
    for attempt in (1, 2):
        request = GenerateRequest(job_id="j", item_id=item_id, prompt=prompt, attempt=attempt)
        try:
            await mock.generate(request)
            outcomes.append("ok")
        except UnavailableError:
            outcomes.append("500")
    return outcomes == ["500", "ok"]


async def flaky_spec(path: Path) -> Path:
    """A spec whose first image fails once (then can succeed), run one image at a time, slowly
    enough that the process is still running when the app retries it."""
    prompt = "a lighthouse in fog"
    seed = 0
    while not await fails_then_succeeds(seed, "a00", prompt):
        seed += 1
    spec: dict[str, Any] = {
        "key": "followed",
        "provider": "mock",
        "provider_options": {**FLAKY, "seed": seed},
        "defaults": {"size": "64x64"},
        "limits": {"concurrency": 1, "max_attempts": 1},
        "output": {"format": "png", "thumbnail_px": 32},
        "items": [{"id": "a00", "prompt": prompt}]
        + [{"id": f"a{n:02d}", "prompt": f"a gull, take {n}"} for n in range(1, ITEMS)],
    }
    await asyncio.to_thread(path.write_text, json.dumps(spec))
    return path


def run_elsewhere(workspace: Workspace, spec: Path, log: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    with log.open("w") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchestrator",
                "--workspace",
                str(workspace.root),
                "--no-progress",
                "run",
                str(spec),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )


@contextlib.contextmanager
def running_elsewhere(
    workspace: Workspace, spec: Path, log: Path
) -> Iterator[subprocess.Popen[str]]:
    """`run_elsewhere`, killed at the end if it still runs."""
    workspace.root.mkdir()
    process = run_elsewhere(workspace, spec, log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def open_the_other_job(
    app: ImageBatchApp, pilot: Pilot[Any]
) -> tuple[JobsTable, str, JobScreen]:
    """Open the job the other process runs, from the jobs list, once it is listed as run
    elsewhere."""
    await until(pilot, lambda: isinstance(app.screen, JobsScreen), "the jobs screen")
    table = app.screen.query_one(JobsTable)
    await until(pilot, lambda: table.row_count == 1, "the other process's job is listed")
    job_id = str(next(iter(table.rows)).value)
    await until(pilot, lambda: table.get_cell(job_id, "runner") == "elsewhere", "runner")
    table.focus()
    await pilot.press("enter")
    return table, job_id, await job_screen(pilot, app)


async def test_the_app_follows_another_process_and_that_process_runs_its_retry(
    workspace: Workspace, tmp_path: Path
) -> None:
    spec = await flaky_spec(tmp_path / "flaky.json")
    app = tui_app(workspace)
    with running_elsewhere(workspace, spec, tmp_path / "run.log") as process:
        async with app.run_test(size=SIZE) as pilot:
            assert app.session is not None
            orchestrator = app.session.orchestrator
            _, job_id, screen = await open_the_other_job(app, pilot)
            await until(pilot, lambda: statuses(screen).get("a00") == "failed", "a00 fails there")
            assert "running" in str(screen.feed.job_status)
            await press_on(pilot, screen, "a00", "r")
            await until(
                pilot, lambda: statuses(screen)["a00"] == "completed", "the other process retries"
            )
            assert cell(screen.query_one(ItemsTable), "a00", "attempts") == "2"
            assert not orchestrator.running_here(job_id)  # it ran there, not here
            code = await asyncio.to_thread(process.wait, 60)
            await until(
                pilot, lambda: "running" not in str(screen.feed.job_status), "the job's end shows"
            )
            items = await orchestrator.handle(job_id).items()
            assert statuses(screen) == {item.id: str(item.status) for item in items}
            assert len(statuses(screen)) == ITEMS
            assert code in (0, 3)  # completed, or partial where other images failed
            log = (tmp_path / "run.log").read_text()
            assert "a00: failed" in log and "a00: completed" in log  # that process did both


async def test_a_job_whose_process_was_killed_shows_stopped(
    workspace: Workspace, tmp_path: Path
) -> None:
    """The other process dies (SIGKILL): the journal still says running, and the job's screen
    says stopped and stops counting down, as the jobs list does."""
    spec = await flaky_spec(tmp_path / "flaky.json")
    app = tui_app(workspace)
    with running_elsewhere(workspace, spec, tmp_path / "run.log") as process:
        async with app.run_test(size=SIZE) as pilot:
            table, job_id, screen = await open_the_other_job(app, pilot)
            await until(pilot, lambda: "completed" in statuses(screen).values(), "an image done")
            assert not screen.stopped
            process.kill()
            await asyncio.to_thread(process.wait, 30)
            await until(pilot, lambda: screen.stopped, "the screen sees nobody runs the job")
            await pilot.pause(0.1)
            header = [str(line.render()) for line in screen.query_one(JobProgress).query(Line)]
            assert header[0].endswith("· stopped") and "stopped: resume to go on" in header[2]
            await pilot.press("escape")
            await until(
                pilot, lambda: str(table.get_cell(job_id, "status")) == "stopped", "listed stopped"
            )

"""The grid of a job that a CLI in another process runs: it follows the job live, and its
buttons reach that process through the journal."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from orchestrator import ItemStatus, Orchestrator
from orchestrator.notebook import BatchView, show_job

from .conftest import MakeOrchestrator


async def run_in_cli(
    orchestrator: Orchestrator, spec: dict[str, Any], tmp_path: Path
) -> asyncio.subprocess.Process:
    """`imagebatch run SPEC` in another process, on the orchestrator's workspace."""
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEBATCH_")}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orchestrator", "--workspace", str(orchestrator.workspace.root),
        "--no-progress", "run", str(spec_file), env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def first_job(orchestrator: Orchestrator) -> str:
    """The id of the workspace's first job, once the other process has recorded it."""
    while not orchestrator.workspace.journal_dir.is_dir() or not await orchestrator.jobs():
        await asyncio.sleep(0.05)
    return (await orchestrator.jobs())[0].id


@contextlib.asynccontextmanager
async def viewed_in_cli(
    orchestrator: Orchestrator, spec: dict[str, Any], tmp_path: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, BatchView]]:
    """The CLI running `spec` in another process and a view of its job here (a minute at
    most); the CLI is killed at the end if it still runs."""
    cli = await run_in_cli(orchestrator, spec, tmp_path)
    try:
        async with asyncio.timeout(60):
            job_id = await first_job(orchestrator)
            yield cli, await show_job(job_id, orchestrator=orchestrator, show=False)
    finally:
        if cli.returncode is None:
            cli.kill()
            await cli.wait()


async def test_buttons_reach_the_cli_process_running_the_job(
    make_orchestrator: MakeOrchestrator, tmp_path: Path
) -> None:
    spec = {
        "key": "cli-run",
        "provider": "mock",
        "provider_options": {
            "latency_mean_s": 0.6,
            "latency_distribution": "fixed",
            "fail_first": {"page-1": 1},
        },
        "limits": {"concurrency": 1, "max_attempts": 1},
        "defaults": {"size": "64x64"},
        "items": [{"id": f"page-{n}", "prompt": f"page {n}"} for n in range(1, 9)],
    }
    async with viewed_in_cli(make_orchestrator(), spec, tmp_path) as (cli, view):
        handle = await view.ready()
        assert await handle.runner_live() and not await handle.running_here()
        while view.feed is None or view.feed.rows["page-1"].status != ItemStatus.FAILED:
            await asyncio.sleep(0.05)  # the grid sees the failure the CLI recorded
        await view.refresh()
        cards = {card.item_id: card for card in view.cards}
        said: list[str] = []
        view.header.message.observe(lambda change: said.append(change["new"]), names="value")
        assert cards["page-1"].status.value == "failed"
        cards["page-1"].retry.click()
        cards["page-8"].cancel.click()
        await view.wait()
        out, err = await cli.communicate()
    # Neither request ran anything here: the CLI's runner carried both out.
    assert "retrying page-1 in the process running the job" in said
    assert "cancelling page-8" in said
    items = {item.id: item for item in await handle.items()}
    assert items["page-1"].status == ItemStatus.COMPLETED
    assert len(items["page-1"].attempts) == 2  # run again by the CLI, not by this process
    assert items["page-8"].status == ItemStatus.CANCELLED and not items["page-8"].attempts
    assert {items[f"page-{n}"].status for n in range(2, 8)} == {ItemStatus.COMPLETED}
    assert not await handle.runner_live()
    assert cards["page-1"].status.value == "completed"
    assert cards["page-8"].status.value == "cancelled", (out, err)


async def test_a_job_whose_cli_process_was_killed_is_shown_stopped(
    make_orchestrator: MakeOrchestrator, tmp_path: Path
) -> None:
    """The CLI dies (SIGKILL): the journal still says running; the grid's header says stopped,
    with no ETA, rather than running."""
    spec = {
        "key": "killed-run",
        "provider": "mock",
        "provider_options": {"latency_mean_s": 0.4, "latency_distribution": "fixed"},
        "limits": {"concurrency": 1},
        "defaults": {"size": "64x64"},
        "items": [{"id": f"page-{n}", "prompt": f"page {n}"} for n in range(1, 30)],
    }
    async with viewed_in_cli(make_orchestrator(), spec, tmp_path) as (cli, view):
        handle = await view.ready()
        while view.feed is None or view.feed.rows["page-1"].status != ItemStatus.COMPLETED:
            await asyncio.sleep(0.05)
        assert view.header.done.value.endswith("· running")
        cli.kill()
        await cli.wait()
        await view.wait()  # the view stops following once nobody runs the job
        while not view.header.done.value.endswith("· stopped"):
            await asyncio.sleep(0.05)
    assert (await handle.status()).status == "running"  # as the journal has it
    assert "stopped: resume to go on" in view.header.pace.value
    assert "ETA" not in view.header.pace.value

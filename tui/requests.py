"""What the job screen's keys ask of a job, through its handle; each returns what to tell the
user. Retry and cancel are requests written to the journal: the process running the job (this
app or another) carries them out; a job nobody runs is started here."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

from orchestrator import JobHandle, Orchestrator
from orchestrator.wording import stop_answer

__all__ = ["cancel_items", "cancel_job", "open_in_viewer", "resume", "retry", "stop"]


async def retry(handle: JobHandle, item_ids: list[str] | None) -> str:
    """Retry these items (None: every failed and cancelled one); start the job here if no
    process runs it, with the failed images that reference them (they failed because these
    did). Raises `ConfigError` for an item that did not fail."""
    retried = await handle.retry_and_run(item_ids, with_dependents=True)
    if not retried.ids:
        return "nothing to retry: no image failed or was cancelled"
    what = retried.ids[0] if len(retried.ids) == 1 else f"{len(retried.ids)} images"
    if not retried.here:
        return f"retrying {what}: the process running the job starts it now"
    return f"retrying {what} here"


async def resume(orchestrator: Orchestrator, handle: JobHandle) -> str:
    """Run an interrupted (or created) job here; raises if it finished or runs elsewhere."""
    if await handle.runner_live():
        where = "here" if await handle.running_here() else "in another process"
        return f"the job is running {where} already"
    await orchestrator.start(handle.id)
    return "running the job here"


async def cancel_items(handle: JobHandle, item_ids: list[str]) -> str:
    asked = await handle.cancel_items(item_ids)
    if not asked:
        return f"{', '.join(item_ids)} had already finished: nothing to cancel"
    return f"cancelling {', '.join(asked)}"


async def cancel_job(handle: JobHandle) -> str:
    job = await handle.cancel()
    if job.cancel_requested:
        return "cancel requested: the process running the job stops its images now"
    return f"job {job.status}"


async def stop(handle: JobHandle) -> str:
    """Ask the process running the job (this app or another) to start no new request and stop
    once the ones under way are kept: a cancel would throw those away, and they may be billed."""
    return stop_answer(await handle.stop())


def viewer_command() -> list[str] | None:
    """The system's image viewer launcher, where there is a display to show it on."""
    if sys.platform == "darwin":
        return ["open"]
    if sys.platform == "win32":
        return None
    has_display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    opener = shutil.which("xdg-open")
    return [opener] if opener and has_display else None


async def open_in_viewer(path: Path) -> bool:
    """Open `path` in the system's viewer; False when there is none (a terminal over SSH)."""
    command = viewer_command()
    if command is None:
        return False
    process = await asyncio.create_subprocess_exec(
        *command,
        str(path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await process.wait() == 0

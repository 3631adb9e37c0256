"""One recorded job run in the orchestrator's process, holding its key's lock (`run_job`).

    run_job          the job's webhook sender started beside the run, drained after it
      _run_locked    folders made, stale files gone, provider built, lane and quota taken,
                     the `Runner` run; the lock given back however the run ends
        _run_guarded the run and the lock keeper side by side: a lost lock stops the run

Giving the lock back and stopping the sender finish even while the task is being cancelled
(`_quietly`); the cancellation is raised again once they are done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .attempts import Quota
from .errors import ConfigError
from .locks import LockOwner, keep_alive, pid_alive
from .pipeline import Runner
from .preflight import provider_for
from .records import JobRecord
from .spec import JobConfig
from .storage import make_folders, remove_stale_tmp

if TYPE_CHECKING:
    from .service import Orchestrator
    from .webhooks.sender import WebhookSender

__all__ = ["run_job"]


async def run_job(orchestrator: Orchestrator, job: JobRecord, owner: LockOwner) -> JobRecord:
    """Run the job with its webhook's sender beside it; the sender gets `drain_s` to send
    what is left after the lock is released, and none when the run is interrupted."""
    try:
        sender = _webhook_sender(orchestrator, job)
        if sender is not None:
            await sender.start()
    except BaseException:
        await _quietly(orchestrator.journal.release(owner))
        raise
    try:
        record = await _run_locked(orchestrator, job, owner)
    except BaseException:
        if sender is not None:
            await _quietly(sender.stop(drain=False))
        raise
    if sender is not None:
        await _quietly(sender.stop(drain=True))
    return record


def _webhook_sender(orchestrator: Orchestrator, job: JobRecord) -> WebhookSender | None:
    if job.config.webhook is None:
        return None
    from .webhooks.sender import sender_for  # loads aiohttp: only for jobs with a webhook

    return sender_for(
        orchestrator.journal,
        orchestrator.bus,
        job,
        env=orchestrator.env,
        images_root=orchestrator.workspace.root,
        clock=orchestrator.clock,
        settings=orchestrator.webhooks,
    )


async def _run_locked(orchestrator: Orchestrator, job: JobRecord, owner: LockOwner) -> JobRecord:
    journal, workspace = orchestrator.journal, orchestrator.workspace
    try:
        # a killed run's half-written files go; the lock says no live writer of ours is left
        folder = workspace.job_dir(job.id)
        await asyncio.to_thread(_job_folders, workspace.root, folder)  # before anything is paid
        await asyncio.to_thread(remove_stale_tmp, folder, pid_alive)
        provider = provider_for(job.config, orchestrator.env, orchestrator.providers)
        try:
            with orchestrator.shared.lane(job.config, orchestrator.env) as lane:
                runner = Runner(
                    journal,
                    journal.run(job.id, owner),
                    orchestrator.bus,
                    workspace=workspace,
                    provider=provider,
                    job=job,
                    lane=lane,
                    post=orchestrator.post,
                    clock=orchestrator.clock,
                    settings=orchestrator.settings,
                    cache=orchestrator.cache,
                    quota=_quota(orchestrator, job.config),
                )
                guard = keep_alive(journal, owner, orchestrator.heartbeat_s, orchestrator.clock)
                orchestrator.runners[job.id] = runner
                try:
                    return await _run_guarded(runner.run(), guard)
                finally:
                    orchestrator.runners.pop(job.id, None)
        finally:
            await provider.aclose()
    finally:
        await _quietly(journal.release(owner))


def _job_folders(root: Path, folder: Path) -> None:
    """Make the job's folders, or raise `ConfigError` if a symbolic link was planted on
    the way (it would take the images outside the workspace)."""
    try:
        for sub in ("raw", "thumbs"):
            make_folders(root, folder / sub)
    except PermissionError as error:
        raise ConfigError(str(error)) from None


def _quota(orchestrator: Orchestrator, config: JobConfig) -> Quota | None:
    """The job's share of the workspace's start rate, if it has one to keep and the
    orchestrator's settings share it between processes."""
    if not orchestrator.settings.shared_quota:
        return None
    return orchestrator.shared.quota(config, orchestrator.env)


async def _quietly(work: Coroutine[Any, Any, Any]) -> None:
    """Finish `work` (give back the lock, keep undelivered webhooks) even while being
    cancelled; the cancellation is raised once it is done."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


async def _run_guarded(
    work: Coroutine[Any, Any, JobRecord], guard: Coroutine[Any, Any, None]
) -> JobRecord:
    """Run `work` while `guard` runs beside it; if the guard fails, stop the work and raise."""
    main = asyncio.create_task(work)
    side = asyncio.create_task(guard)
    try:
        await asyncio.wait({main, side}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        for task in (main, side):
            task.cancel()
        await asyncio.wait({main, side})
        raise
    if main.done():
        side.cancel()
        await asyncio.wait({side})
        return main.result()
    main.cancel()
    await asyncio.wait({main})
    side.result()  # raises why the guard stopped (the lock was lost)
    raise RuntimeError("the lock keeper stopped without an error")

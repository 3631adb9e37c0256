"""What the runner is set with (`PipelineSettings`), what its items share (`item_work`), and
the task helpers it stops and records with: a task that raised, work recorded even while being
cancelled, tasks cancelled together."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from .clock import Clock
from .errors import LeaseLostError
from .items import ItemWork
from .journal import Run
from .lanes import Lane
from .pauses import PauseWatch
from .providers.base import Provider
from .records import JobRecord
from .retry import RetryPolicy
from .stages import PostStage
from .storage import Workspace

__all__ = ["PipelineSettings", "cancel_all", "item_work", "raised", "shielded"]


@dataclass(frozen=True)
class PipelineSettings:
    """How the runner behaves beyond the job's own limits."""

    retry_base_s: float = 1.0
    """First backoff ceiling; doubles per attempt (full jitter)."""
    retry_cap_s: float = 60.0
    request_poll_s: float = 0.25
    """How often the event log is read for requests from other processes."""
    seed: int | None = None
    """Seed of the backoff jitter; none draws one."""
    shared_quota: bool = True
    """Keep a job's `rate_per_minute` across every process on the workspace (see `quota`),
    not only within this one."""
    concurrency_report_s: float = 1.0
    """How often at most an adaptive job's concurrency limit is recorded (the latest then)."""


def raised(task: asyncio.Task[Any]) -> bool:
    return not task.cancelled() and task.exception() is not None


async def shielded(work: Coroutine[Any, Any, Any]) -> None:
    """Record something even while being cancelled; a lost lease means there is nothing to do."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except LeaseLostError:
        return
    except asyncio.CancelledError:
        await asyncio.wait([task])
    if task.done() and not task.cancelled():
        error = task.exception()
        if error is not None and not isinstance(error, LeaseLostError):
            raise error


async def cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)


def item_work(
    run: Run,
    job: JobRecord,
    workspace: Workspace,
    provider: Provider,
    lane: Lane,
    post: PostStage,
    clock: Clock,
    pauses: PauseWatch,
    settings: PipelineSettings,
) -> ItemWork:
    """What works one item through: the runner's clock, pauses, retry policy and jitter."""
    return ItemWork(
        verbs=run,
        workspace=workspace,
        provider=provider,
        config=job.config,
        lane=lane,
        post=post,
        clock=clock,
        pauses=pauses,
        policy=RetryPolicy(
            job.config.limits.max_attempts,
            settings.retry_base_s,
            settings.retry_cap_s,
            max_rate_limited=job.config.limits.max_rate_limited,
        ),
        rng=random.Random(settings.seed),
    )

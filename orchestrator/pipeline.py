"""The runner: carries one job's unfinished items through to the end on the current event loop.

Per item: wait out a recorded backoff -> take a turn on the provider's lane (cool-down, slot,
pacing) -> record the attempt -> call the provider under the attempt's timeout -> store and
record the paid image (still inside the turn) -> post-process in its own stage -> complete. A
failed attempt is classified; a retryable one waits, outside the lane, and goes again.

The runner decides *when*; the journal records *what* (every write carries the runner's lease,
so a runner whose lock was taken over writes nothing more); the provider makes the call.
While it runs, the runner follows the job's events for requests from anyone, here or in another
process: a cancel stops the job's items (and every retry), a retry starts the items it put back.
Cancellation is recorded, then re-raised: an interrupt leaves the job resumable.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from .bus import EventBus
from .clock import Clock, SystemClock
from .errors import LeaseLostError
from .events import ItemReset, JobCancelRequested
from .follow import follow
from .items import ItemWork
from .journal import Journal, Run
from .lanes import Lane
from .pauses import PauseWatch
from .providers.base import Provider
from .records import JobRecord
from .retry import RetryPolicy
from .stages import PostStage
from .states import ItemStatus
from .storage import Workspace

__all__ = ["PipelineSettings", "Runner"]


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


class Runner:
    """Runs one job's unfinished items to the end, or until cancelled or its lease is lost."""

    def __init__(
        self,
        journal: Journal,
        run: Run,
        bus: EventBus,
        *,
        workspace: Workspace,
        provider: Provider,
        job: JobRecord,
        lane: Lane,
        post: PostStage,
        clock: Clock | None = None,
        settings: PipelineSettings | None = None,
    ) -> None:
        settings = settings or PipelineSettings()
        limits = job.config.limits
        self.journal, self.run_verbs, self.bus = journal, run, bus
        self.job_id = job.id
        self.settings = settings
        self.clock = clock or SystemClock()
        self.pauses = PauseWatch()
        self.work = ItemWork(
            verbs=run,
            workspace=workspace,
            provider=provider,
            config=job.config,
            lane=lane,
            post=post,
            clock=self.clock,
            pauses=self.pauses,
            policy=RetryPolicy(limits.max_attempts, settings.retry_base_s, settings.retry_cap_s),
            rng=random.Random(settings.seed),
        )
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.cancelling: set[str] = set()
        """Items whose task is being stopped because a cancel asked for them."""

    async def run(self) -> JobRecord:
        """Run every unfinished item; return the job as finally recorded."""
        snapshot = await self.run_verbs.start()
        started = self.clock.monotonic()
        self.pauses.start()
        requests = asyncio.create_task(self._follow_requests(snapshot.seq), name="requests")
        try:
            for item in snapshot.items:
                if item.status == ItemStatus.PENDING:
                    self._spawn(item.id)
            job = await self._until_done(started)
        except LeaseLostError:
            await _cancel_all(list(self.tasks.values()))
            raise
        except BaseException:
            await _cancel_all(list(self.tasks.values()))
            run_s = self.clock.monotonic() - started
            await _shielded(self.run_verbs.finish(run_s, interrupted=True))
            raise
        finally:
            self.pauses.stop()
            await _cancel_all([requests])
        return job

    async def _until_done(self, started: float) -> JobRecord:
        """Wait for the item tasks; finish when none is left and nothing came back to pending."""
        while True:
            while self.tasks:
                tasks = list(self.tasks.values())
                await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                self._raise_failures()
            run_s = self.clock.monotonic() - started
            job = await self.run_verbs.finish(run_s, interrupted=False)
            if job is not None:
                return job
            snapshot = await self.journal.snapshot(self.job_id)  # retried meanwhile: go again
            for item in snapshot.items:
                if item.status == ItemStatus.PENDING:
                    self._spawn(item.id)

    def _raise_failures(self) -> None:
        for item_id, task in list(self.tasks.items()):
            if not task.done():
                continue
            del self.tasks[item_id]
            if _raised(task):
                raise task.exception()  # type: ignore[misc]

    def _spawn(self, item_id: str) -> None:
        """Run the item, unless a task runs it already. A task that has ended (an item that
        failed, retried since) is replaced, unless it raised: that stops the run."""
        task = self.tasks.get(item_id)
        if task is not None and (not task.done() or _raised(task)):
            return
        self.tasks[item_id] = asyncio.create_task(self._run_item(item_id), name=item_id)

    async def _run_item(self, item_id: str) -> None:
        try:
            await self.work.run(item_id)
        except asyncio.CancelledError:
            await _shielded(self.work.stopped(item_id, cancelled=item_id in self.cancelling))
            raise

    async def _follow_requests(self, after: int) -> None:
        """Carry out cancels and retries that anyone commits while this job runs."""
        poll_s = self.settings.request_poll_s
        async for event in follow(self.journal, self.bus, self.job_id, after=after, poll_s=poll_s):
            if isinstance(event, JobCancelRequested):
                targets = list(event.item_ids) or list(self.tasks)
                self.cancelling.update(targets)
                for item_id in targets:
                    if item_id in self.tasks:
                        self.tasks[item_id].cancel()
            elif isinstance(event, ItemReset) and event.reason == "retry":
                self.cancelling.discard(event.item_id or "")
                if event.item_id is not None:
                    self._spawn(event.item_id)


def _raised(task: asyncio.Task[None]) -> bool:
    return not task.cancelled() and task.exception() is not None


async def _shielded(work: Coroutine[Any, Any, Any]) -> None:
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


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)

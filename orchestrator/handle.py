"""`JobHandle`: how a front end (the CLI, the TUI, a notebook, a Python user) holds one job.

A handle is a job id plus async verbs, whether the job runs in this process, in another one, or
nowhere right now. Reads come from the journal; `events` follows the job live (see `follow`);
`cancel`, `cancel_items` and `retry` are requests written to the journal, which the process
running the job (this one or another) carries out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING, NamedTuple

from .errors import ConfigError
from .events import Event, JobFinished, JobInterrupted
from .follow import follow
from .records import ItemRecord, JobRecord, JobSnapshot
from .references import dependents_of
from .states import JOB_TERMINAL, ItemStatus
from .tally import Tally
from .webhooks.models import UndeliveredWebhook

if TYPE_CHECKING:
    from .service import Orchestrator

__all__ = ["JobHandle", "Retried"]

_RETRYABLE = frozenset({ItemStatus.FAILED, ItemStatus.CANCELLED})
LIVENESS_CHECK_S = 2.0
"""While waiting for a job another process runs, how often to check that it still runs."""


class JobHandle:
    """One job of a workspace."""

    def __init__(self, orchestrator: Orchestrator, job_id: str) -> None:
        self._orchestrator = orchestrator
        self.id = job_id

    def __repr__(self) -> str:
        return f"JobHandle({self.id!r})"

    @property
    def orchestrator(self) -> Orchestrator:
        """The orchestrator (and so the workspace) this handle works through."""
        return self._orchestrator

    # ------------------------------------------------------------------ reads

    async def status(self) -> JobRecord:
        """The job as last recorded."""
        return await (await self._orchestrator.ready()).job(self.id)

    async def items(self) -> list[ItemRecord]:
        """The job's items, in order, from one consistent read."""
        return (await self.snapshot()).items

    async def item(self, item_id: str) -> ItemRecord:
        """One item as last recorded (`NotFoundError` for an unknown id)."""
        return await (await self._orchestrator.ready()).item(self.id, item_id)

    async def snapshot(self) -> JobSnapshot:
        """The job, its items and the last event included, from one read."""
        return await (await self._orchestrator.ready()).snapshot(self.id)

    async def tally(self) -> Tally:
        """The numbers every display shows, as the job stands now."""
        snapshot = await self.snapshot()
        return Tally.from_snapshot(snapshot.job, snapshot.items, now=time.time(), seq=snapshot.seq)

    async def events(self, after: int = 0) -> AsyncGenerator[Event, None]:
        """Every event of the job after seq `after`, live, each once and in order (forever:
        break out when done)."""
        journal = await self._orchestrator.ready()
        async with aclosing(follow(journal, self._orchestrator.bus, self.id, after=after)) as live:
            async for event in live:
                yield event

    async def undelivered_webhooks(self) -> list[UndeliveredWebhook]:
        """The job's webhook messages that were not delivered (kept in the journal), oldest
        first; a later run of the job sends them again, with the same ids."""
        return await (await self._orchestrator.ready()).undelivered(self.id)

    async def running_here(self) -> bool:
        """This process is running the job."""
        return self._orchestrator.running_here(self.id)

    async def runner_live(self) -> bool:
        """Some live process (this one or another) is running the job."""
        return await (await self._orchestrator.ready()).runner_live(await self.status())

    async def wait(self) -> JobRecord:
        """Wait until the job ends, or until no process runs it any more (interrupted: it stays
        resumable); returns the job as it then is. Cancelling the wait leaves the job running."""
        task = self._orchestrator.task_of(self.id)
        if task is not None:
            await asyncio.wait([task])
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
            return await self.status()
        while True:  # run elsewhere: follow it, and look now and then that it still runs
            snapshot = await self.snapshot()
            if snapshot.job.status in JOB_TERMINAL or not await self.runner_live():
                return snapshot.job
            try:
                async with asyncio.timeout(LIVENESS_CHECK_S):
                    async with aclosing(self.events(after=snapshot.seq)) as events:
                        async for event in events:
                            if isinstance(event, JobFinished | JobInterrupted):
                                break  # ended, or a new run took it up: look again
            except TimeoutError:
                continue

    # --------------------------------------------------------------- requests

    async def cancel(self) -> JobRecord:
        """Cancel the job: nothing new starts; items in flight are stopped by their runner."""
        return await (await self._orchestrator.ready()).request_cancel(self.id)

    async def stop(self) -> bool:
        """Stop the job's run, here or in another process, the gentle way: no new request
        starts, the ones under way finish and their images are kept (they may be billed), then
        the run ends and the job stays resumable. False when no process is running it."""
        return await (await self._orchestrator.ready()).request_stop(self.id)

    async def cancel_items(self, item_ids: list[str]) -> list[str]:
        """Cancel these items (unknown ids are an error); returns those that were unfinished."""
        return await (await self._orchestrator.ready()).cancel_items(self.id, list(item_ids))

    async def retry(
        self, item_ids: list[str] | None = None, *, with_dependents: bool = False
    ) -> list[str]:
        """Put failed and cancelled items (these, or all) back to pending with fresh attempts;
        `with_dependents` adds the failed and cancelled items that reference them (directly or
        through others), so they are drawn again from the new image.

        A process running the job starts them; otherwise `Orchestrator.start` does. Returns the
        ids put back; an unknown id or one that did not fail is a `ConfigError`.
        """
        if item_ids:
            snapshot = await self.snapshot()
            known = {item.id: item for item in snapshot.items}
            for item_id in item_ids:
                if item_id not in known:
                    raise ConfigError(f"job {self.id} has no item {item_id!r}")
                if known[item_id].status not in _RETRYABLE:
                    raise ConfigError(
                        f"item {item_id!r} is {known[item_id].status}; only failed or "
                        "cancelled items can be retried"
                    )
            if with_dependents:
                more = dependents_of(snapshot.items, item_ids)
                item_ids = [*item_ids, *(i for i in more if known[i].status in _RETRYABLE)]
        return await (await self._orchestrator.ready()).request_retry(self.id, item_ids)

    async def dependents(self, item_ids: list[str], *, retryable: bool = True) -> list[str]:
        """The items that reference these (directly or through others), in job order; with
        `retryable`, only the failed and cancelled ones (what `with_dependents` adds)."""
        items = await self.items()
        status = {item.id: item.status for item in items}
        found = dependents_of(items, item_ids)
        return [i for i in found if not retryable or status[i] in _RETRYABLE]

    async def retry_failed(self) -> list[str]:
        """Retry every failed and cancelled item."""
        return await self.retry(None)

    async def retry_and_run(
        self, item_ids: list[str] | None = None, *, with_dependents: bool = False
    ) -> Retried:
        """Retry these items (None: every failed and cancelled one) and see that they run: the
        process running the job starts them; when none does, the job starts here (checked
        first, so a missing key leaves the items as they were)."""
        elsewhere = await self.runner_live()
        if not elsewhere:
            await self._orchestrator.preflight(await self.status())
        reset = await self.retry(item_ids, with_dependents=with_dependents)
        if reset and not elsewhere:
            await self._orchestrator.start(self.id)
        return Retried(reset, here=bool(reset) and not elsewhere)


class Retried(NamedTuple):
    """What `retry_and_run` did."""

    ids: list[str]
    """The items put back to pending."""
    here: bool
    """This process started the job for them (False: the process running it does)."""

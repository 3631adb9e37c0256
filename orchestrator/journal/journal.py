"""The journal as the event loop sees it: async reads and verbs that never run on the loop.

Writes run one after another on the journal's writer thread, reads on its reader thread, so a
commit never stalls the loop and never queues behind post-processing or other blocking work.
The events of each commit reach the in-process bus in commit order, after the commit is durable.
`Journal` is the interface the rest of the core uses; `DiskJournal` (SQLite) is the one
implementation behind it today.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal, ParamSpec, Protocol, TypeVar

from ..call_thread import CallThread
from ..clock import SYSTEM_CLOCK, Clock
from ..events import Event
from ..locks import LockOwner
from ..records import ErrorInfo, ItemRecord, JobRecord, JobSnapshot
from ..spec import JobSpec
from ..webhooks.models import UndeliveredWebhook
from .disk import DiskJournal
from .fence import LeaseCheck
from .runs import ProcessedImage, RawImage, RunJournal
from .writer import Writer

__all__ = ["EventSink", "Journal", "Run"]

P = ParamSpec("P")
T = TypeVar("T")


class EventSink(Protocol):
    def publish(self, event: Event) -> None: ...


class Journal:
    """Jobs, items, events and locks of one workspace, for code on the event loop."""

    def __init__(
        self,
        directory: Path,
        *,
        bus: EventSink | None = None,
        stale_after_s: float = 300.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.bus = bus
        self.disk = DiskJournal(
            directory, stale_after_s=stale_after_s, clock=clock, on_commit=self._committed
        )
        self._writer = Writer(self.disk.store)
        self._reader = CallThread(name="journal-read")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._unpublished: list[Event] = []
        """Events committed and not yet handed to the bus: one trip to the loop takes all."""
        self._trip: asyncio.AbstractEventLoop | None = None
        """The loop a trip is on its way to, if one is."""
        self._publishing = threading.Lock()

    def close(self) -> None:
        """Close the database connections of the journal's threads, then the threads. Safe to
        call twice."""
        if self._closed:
            return
        self._closed = True
        self._writer.shutdown()
        self._reader.shutdown()
        self.disk.close()  # every thread's connection, now idle

    async def write(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` (a verb) on the writer thread; returns once its commit is durable."""
        return await self._on(self._writer, functools.partial(fn, *args, **kwargs))

    def queue_write(
        self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> asyncio.Future[T]:
        """Queue `fn` (a verb) on the writer thread now; the future is done once its commit is
        durable. Verbs commit in the order they are queued, so a verb queued after this one
        sees its effect (or its failure)."""
        loop = self._loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs)
        return loop.run_in_executor(self._writer.on_loop(loop), call)

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` (a read) on the reader thread."""
        return await self._on(self._reader, functools.partial(fn, *args, **kwargs))

    async def _on(self, thread: CallThread, call: Callable[[], T]) -> T:
        loop = self._loop = asyncio.get_running_loop()
        return await loop.run_in_executor(thread.on_loop(loop), call)

    def _committed(self, events: list[Event]) -> None:
        """Hand committed events to the bus, on the loop, in the order they were committed.
        The events of the commits made before the loop's turn comes go in one trip: each trip
        is a handle and a write to the loop's wake-up socket, and the followers of the bus wake
        once for all of them."""
        if self.bus is None:
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            for event in events:
                self.bus.publish(event)
            return
        with self._publishing:
            self._unpublished.extend(events)
            if self._trip is loop:  # a trip on this loop is on its way: these go with it
                return
            self._trip = loop  # (one on a loop that closed before it ran never comes)
        try:
            loop.call_soon_threadsafe(self._publish_committed)
        except RuntimeError:  # the loop closed meanwhile: handed over here, as above
            self._publish_committed()

    def _publish_committed(self) -> None:
        with self._publishing:
            events, self._unpublished, self._trip = self._unpublished, [], None
        if self.bus is not None:
            for event in events:
                self.bus.publish(event)

    # ------------------------------------------------------------------ reads

    async def job(self, job_id: str) -> JobRecord:
        return await self.read(self.disk.job, job_id)

    async def jobs(self) -> list[JobRecord]:
        return await self.read(self.disk.jobs)

    async def item(self, job_id: str, item_id: str) -> ItemRecord:
        return await self.read(self.disk.item, job_id, item_id)

    async def snapshot(self, job_id: str) -> JobSnapshot:
        return await self.read(self.disk.snapshot, job_id)

    async def events_since(self, after: int, job_id: str | None = None) -> tuple[list[Event], int]:
        """The job's (or every) event after `after`, and the last seq that read covered."""
        return await self.read(self.disk.events_since, after, job_id)

    async def runner_live(self, job: JobRecord) -> bool:
        return await self.read(self.disk.runner_live, job)

    # --------------------------------------------------------------- writes

    async def create_job(
        self, spec: JobSpec, *, lock: bool = False, prompts: Mapping[str, str] | None = None
    ) -> tuple[JobRecord, LockOwner | None]:
        return await self.write(self.disk.create_job, spec, lock=lock, prompts=prompts)

    async def request_cancel(self, job_id: str) -> JobRecord:
        return await self.write(self.disk.request_cancel, job_id)

    async def cancel_items(self, job_id: str, item_ids: list[str]) -> list[str]:
        return await self.write(self.disk.cancel_items, job_id, item_ids)

    async def request_stop(self, job_id: str) -> bool:
        return await self.write(self.disk.request_stop, job_id)

    async def request_retry(self, job_id: str, item_ids: list[str] | None = None) -> list[str]:
        return await self.write(self.disk.request_retry, job_id, item_ids)

    async def acquire(self, key: str, job_id: str) -> LockOwner:
        return await self.write(self.disk.locks.acquire, key, job_id)

    async def heartbeat(self, owner: LockOwner) -> bool:
        return await self.write(self.disk.locks.heartbeat, owner)

    async def release(self, owner: LockOwner) -> None:
        await self.write(self.disk.locks.release, owner)

    async def holder(self, key: str) -> LockOwner | None:
        return await self.read(self.disk.locks.holder, key)

    async def clear_lock(self, key: str) -> LockOwner | None:
        return await self.write(self.disk.locks.clear, key)

    async def undelivered(self, job_id: str) -> list[UndeliveredWebhook]:
        """The job's webhook messages that were not delivered, oldest first."""
        return await self.read(self.disk.undelivered, job_id)

    async def keep_undelivered(self, messages: list[UndeliveredWebhook]) -> None:
        if messages:
            await self.write(self.disk.keep_undelivered, messages)

    async def forget_undelivered(self, job_id: str, ids: list[str]) -> None:
        if ids:
            await self.write(self.disk.forget_undelivered, job_id, ids)

    def run(self, job_id: str, lease: LockOwner) -> Run:
        """The verbs of the runner of `job_id` holding `lease`."""
        return Run(self, RunJournal(self.disk, job_id, lease))


class Run:
    """A runner's verbs (see `runs.RunJournal`), each awaited off the loop."""

    def __init__(self, journal: Journal, verbs: RunJournal) -> None:
        self._journal = journal
        self._verbs = verbs
        self.job_id = verbs.job_id
        self.lease = verbs.lease
        self._check: LeaseCheck | None = None

    async def item(self, item_id: str) -> ItemRecord:
        return await self._journal.item(self.job_id, item_id)

    async def start(self) -> JobSnapshot:
        return await self._journal.write(self._verbs.start)

    async def check_lease(self) -> None:
        await self._journal.read(self._verbs.check_lease)

    def check_lease_here(self) -> None:
        """`check_lease` in the calling thread (blocking: a read on that thread's connection),
        for a step already off the loop that must check just before it writes."""
        self._verbs.check_lease()

    def lease_check(self) -> LeaseCheck:
        """What another process needs to check this run's lease just before it writes (made
        once: the lease of a run never changes, and every image it stores sends it)."""
        if self._check is None:
            self._check = self._verbs.lease_check()
        return self._check

    async def start_attempt(
        self, item_id: str, reserve_usd: float | None = None
    ) -> ItemRecord | Literal["wait"] | None:
        return await self._journal.write(self._verbs.start_attempt, item_id, reserve_usd)

    async def start_postprocess(self, item_id: str) -> ItemRecord | None:
        return await self._journal.write(self._verbs.start_postprocess, item_id)

    async def record_image(
        self, item_id: str, image: RawImage, processed: ProcessedImage | None = None
    ) -> ItemRecord:
        return await self.queue_record_image(item_id, image, processed)

    def queue_record_image(
        self, item_id: str, image: RawImage, processed: ProcessedImage | None = None
    ) -> asyncio.Future[ItemRecord]:
        """`record_image`, queued now: any verb queued after it (the next attempt's start, say)
        commits after it."""
        return self._journal.queue_write(self._verbs.record_image, item_id, image, processed)

    async def complete(self, item_id: str, processed: ProcessedImage) -> ItemRecord:
        return await self._journal.write(self._verbs.complete, item_id, processed)

    async def retry_later(
        self, item_id: str, error: ErrorInfo, delay_s: float, retry_after: float | None
    ) -> ItemRecord:
        return await self._journal.write(
            self._verbs.retry_later, item_id, error, delay_s, retry_after
        )

    async def fail(self, item_id: str, error: ErrorInfo) -> ItemRecord | None:
        return await self._journal.write(self._verbs.fail, item_id, error)

    async def stop(self, item_id: str, *, cancelled: bool) -> ItemRecord | None:
        return await self._journal.write(self._verbs.stop, item_id, cancelled=cancelled)

    async def record_stopping(self) -> JobRecord:
        return await self._journal.write(self._verbs.record_stopping)

    async def record_concurrency(self, limit: int) -> JobRecord:
        return await self._journal.write(self._verbs.record_concurrency, limit)

    async def finish(
        self, run_s: float, *, interrupted: bool, reason: str = "interrupted"
    ) -> JobRecord | None:
        return await self._journal.write(
            self._verbs.finish, run_s, interrupted=interrupted, reason=reason
        )

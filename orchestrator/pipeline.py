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
import contextlib
import functools
from collections import deque

from .attempts import Blocked, Quota
from .bus import EventBus
from .cache import ResultCache
from .clock import Clock, SystemClock
from .errors import LeaseLostError
from .events import ItemReset, JobCancelRequested, JobStopRequested
from .follow import follow
from .journal import Journal, Run
from .keeping import looked_at
from .lanes import Lane, report_concurrency
from .parking import Parking
from .pauses import PauseWatch
from .providers.base import Provider
from .records import ItemRecord, JobRecord
from .runner_parts import PipelineSettings, cancel_all, item_work, raised, shielded
from .stages import PostStage
from .states import ItemStatus
from .storage import Workspace

__all__ = ["PipelineSettings", "Runner"]


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
        cache: ResultCache | None = None,
        quota: Quota | None = None,
    ) -> None:
        self.journal, self.run_verbs, self.bus, self.job_id = journal, run, bus, job.id
        self.settings = settings or PipelineSettings()
        self.clock, self.pauses = clock or SystemClock(), PauseWatch()
        self.work = item_work(
            run, job, workspace, provider, lane, post, self.clock, self.pauses, self.settings
        )
        self.work.cache, self.work.quota = cache, quota
        self.tasks: dict[str, asyncio.Task[float | Blocked | None]] = {}
        """Items being worked on now: at most `active_limit` of them."""
        self.active_limit = max(2 * job.config.limits.most_in_flight, 4)
        self.backlog: deque[str] = deque()
        """Items ready to go once a place among the active ones is free."""
        self.queued: set[str] = set()
        """The backlog's ids, to tell in constant time whether an item is in it."""
        self.timers: dict[str, asyncio.TimerHandle] = {}
        """Items waiting out a backoff: nothing of theirs is held but a timer."""
        self.cancelling: set[str] = set()
        """Items whose task is being stopped because a cancel asked for them."""
        self.again: set[str] = set()
        """Items a retry put back while their last task was ending: they go again after it."""
        self.due: set[str] = set()
        """Items whose backoff the runner has waited out (the journal's `retry_at` is in wall
        time, the wait was on the loop's clock)."""
        self.parked = Parking()
        """Items waiting for items they reference to end."""
        self.changed = asyncio.Event()
        self.winding_down = False
        """No item starts again: the run ends once the calls under way are kept."""

    async def run(self) -> JobRecord:
        """Run every unfinished item; return the job as finally recorded."""
        snapshot = await self.run_verbs.start()
        self.work.post.stores.start_soon()
        started = self.clock.monotonic()
        self.pauses.start()
        requests = asyncio.create_task(self._follow_requests(snapshot.seq), name="requests")
        helpers = [requests, *self._reporters()]
        try:
            self._queue_pending(snapshot.items)
            done = [item for item in snapshot.items if item.status == ItemStatus.COMPLETED]
            del snapshot  # ids are queued; the records are not kept for the whole run
            await self.work.remake_missing(done)  # while the pending items go
            del done
            job = await self._until_done(started)
        except LeaseLostError:
            await self._stop_all()
            raise
        except BaseException:
            await self._stop_all()
            run_s = self.clock.monotonic() - started
            await shielded(self.run_verbs.finish(run_s, interrupted=True))
            raise
        finally:
            self.pauses.stop()
            await cancel_all(helpers)
        return job

    def _reporters(self) -> list[asyncio.Task[None]]:
        """An adaptive job records its lane's limit as it changes (others know theirs)."""
        if not self.work.config.limits.adaptive:
            return []
        every_s = self.settings.concurrency_report_s
        reporting = report_concurrency(self.work.lane, self._record_limit, every_s=every_s)
        return [asyncio.create_task(reporting, name="concurrency")]

    async def _record_limit(self, limit: int) -> None:
        with contextlib.suppress(LeaseLostError):  # the items' own verbs stop the run
            await self.run_verbs.record_concurrency(limit)

    def _queue_pending(self, items: list[ItemRecord]) -> None:
        """Start the pending items, highest priority first, ties in the spec's order (the
        order they take their turns on the lane)."""
        for item in sorted(items, key=lambda item: (-item.priority, item.index)):
            if item.status == ItemStatus.PENDING:
                self._spawn(item.id)

    async def _until_done(self, started: float) -> JobRecord:
        """Wait until no item is active, waiting or queued and nothing came back to pending."""
        while True:
            while self.tasks or self.timers or self.backlog or self.parked:
                await self.changed.wait()
                self.changed.clear()
                self._raise_failures()
            run_s = self.clock.monotonic() - started
            job = await self.run_verbs.finish(run_s, interrupted=self.winding_down)
            if job is not None:
                return job
            snapshot = await self.journal.snapshot(self.job_id)  # retried meanwhile: go again
            self._queue_pending(snapshot.items)

    def _raise_failures(self) -> None:
        for task in list(self.tasks.values()):
            if task.done() and raised(task):
                raise task.exception()  # type: ignore[misc]

    def wind_down(self) -> int:
        """Start no more requests: the items that are not in a call stop now (back to pending,
        as an interrupt leaves them); the calls under way go on, their images are kept, and
        then the run ends, interrupted. Returns how many calls are under way; while any are,
        the journal knows the run is stopping (a SIGKILL then is not the images' fault)."""
        if not self.winding_down and self.work.in_call:
            recording = asyncio.ensure_future(self.run_verbs.record_stopping())
            recording.add_done_callback(looked_at)
        self.winding_down = True
        self._stop_waiting()
        for item_id, task in self.tasks.items():
            if item_id not in self.work.in_call:
                task.cancel()
        self.changed.set()
        return len(self.work.in_call)

    def _spawn(self, item_id: str) -> None:
        """Work on the item now, or queue it until a place is free; once only."""
        if self._here(item_id) or self.winding_down:
            return
        if len(self.tasks) >= self.active_limit:
            self.backlog.append(item_id)
            self.queued.add(item_id)
            return
        due = item_id in self.due
        self.due.discard(item_id)
        task = asyncio.create_task(self._run_item(item_id, due), name=item_id)
        self.tasks[item_id] = task
        task.add_done_callback(functools.partial(self._ended, item_id))

    def _here(self, item_id: str) -> bool:
        """The item is active, waiting or queued in this run."""
        return any(
            item_id in place for place in (self.tasks, self.timers, self.queued, self.parked)
        )

    def _ended(self, item_id: str, task: asyncio.Task[float | Blocked | None]) -> None:
        """An item's task is over: wait out its backoff or its references, or free its place
        for the next; the items waiting for it look again."""
        self.changed.set()
        if raised(task):
            return  # kept in `tasks`: `_raise_failures` stops the run with it
        del self.tasks[item_id]
        wait = None if task.cancelled() or self.winding_down else task.result()
        if isinstance(wait, Blocked):
            self._park(item_id, wait.on)
        elif wait is not None:
            loop = asyncio.get_running_loop()
            self.timers[item_id] = loop.call_later(wait, self._due, item_id)
        else:
            if item_id in self.again:
                self.again.discard(item_id)
                self._spawn(item_id)
            self._wake(item_id)
        while self.backlog and len(self.tasks) < self.active_limit:
            next_id = self.backlog.popleft()
            self.queued.discard(next_id)
            self._spawn(next_id)

    def _park(self, item_id: str, on: tuple[str, ...]) -> None:
        """Hold the item until one of the items it waits for ends here. One that does not run
        here (another process retried it, say) is looked at again every poll."""
        if not self.parked.park(item_id, on, self._here):
            poll_s = self.settings.request_poll_s
            asyncio.get_running_loop().call_later(poll_s, self._unpark, item_id)

    def _wake(self, item_id: str) -> None:
        """The item ended: the items waiting for it look again."""
        for waiter in self.parked.woken(item_id):
            self._unpark(waiter)

    def _unpark(self, item_id: str) -> None:
        if self.parked.release(item_id):
            self._spawn(item_id)
            self.changed.set()

    def _due(self, item_id: str) -> None:
        """An item's backoff is over: it goes now (or first in line)."""
        self.timers.pop(item_id, None)
        self.due.add(item_id)
        self._spawn(item_id)
        self.changed.set()

    async def _run_item(self, item_id: str, due: bool) -> float | Blocked | None:
        try:
            return await self.work.run(item_id, due=due)
        except asyncio.CancelledError:
            await shielded(self.work.stopped(item_id, cancelled=item_id in self.cancelling))
            raise

    def _drop(self, item_id: str) -> None:
        """Forget an item that is not active: its timer or its place in the queue."""
        timer = self.timers.pop(item_id, None)
        if timer is not None:
            timer.cancel()
        if item_id in self.queued:
            self.backlog.remove(item_id)
            self.queued.discard(item_id)
        self.parked.release(item_id)
        self.changed.set()

    async def _stop_all(self) -> None:
        self._stop_waiting()
        await cancel_all(list(self.tasks.values()))

    def _stop_waiting(self) -> None:
        """Forget the items that wait (a backoff, a place, their references): they are pending."""
        for item_id in list(self.timers):
            self._drop(item_id)
        self.backlog.clear()
        self.queued.clear()
        self.parked.clear()
        self.again.clear()  # nothing starts again while the run stops

    async def _follow_requests(self, after: int) -> None:
        """Carry out cancels and retries that anyone commits while this job runs."""
        poll_s = self.settings.request_poll_s
        async for event in follow(self.journal, self.bus, self.job_id, after=after, poll_s=poll_s):
            if isinstance(event, JobCancelRequested):
                self._cancel(list(event.item_ids))
            elif isinstance(event, JobStopRequested):
                self.wind_down()
            elif isinstance(event, ItemReset) and event.reason == "retry":
                self.cancelling.discard(event.item_id or "")
                if event.item_id in self.tasks:
                    self.again.add(event.item_id)  # its last task is still ending
                elif event.item_id is not None:
                    self._spawn(event.item_id)

    def _cancel(self, item_ids: list[str]) -> None:
        """Stop these items (all, if none is named); the journal has cancelled the rest."""
        if not item_ids:
            self.backlog.clear()
            self.queued.clear()
            item_ids = [*self.tasks, *self.timers, *self.parked.blocked]
        self.cancelling.update(item_ids)
        for item_id in item_ids:
            if item_id in self.tasks:
                self.tasks[item_id].cancel()
            else:
                self._drop(item_id)

"""`BatchView`: one job drawn live in a notebook, and what its buttons do.

The view follows the job's events (`JobHandle.events`, live whether this kernel or another
process runs the job) into the core's `JobFeed`, and draws what changed at most every `DRAW_S`
seconds: a 500-image job sends the browser a few updates a second, not one per event. The grid
shows one page of cards (`page_size`), filtered by status; thumbnails are read off the loop as
items complete. Clicks become requests through the handle (`retry_and_run`, `cancel_items`,
`cancel`, `stop`), which the process running the job carries out, or this kernel when none does.
Progress is widget state only: nothing here prints.

The widgets and how a feed is drawn on them are `panel.py`; following the events, `following.py`;
the header's words, `words.py`; the tasks on the kernel's loop, `tasks.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..errors import ImageBatchError
from ..feed import JobFeed
from ..handle import JobHandle
from ..records import JobRecord
from ..service import Orchestrator
from ..states import JOB_TERMINAL, ItemStatus
from ..wording import stop_answer
from .cards import JobHeader
from .following import apply_events
from .panel import FILTERS, BatchPanel
from .tasks import KernelTasks
from .words import cancel_items_words, cancel_words, retried_words, retry_words, title

__all__ = ["DRAW_S", "FILTERS", "PAGE_SIZE", "BatchView"]

DRAW_S = 0.25
"""Changes are drawn together at most this often."""
PAGE_SIZE = 24


class BatchView:
    """A job's live grid (`widget`) and its `JobHandle` (`handle`, once the job is recorded)."""

    def __init__(self, orchestrator: Orchestrator, *, page_size: int = PAGE_SIZE) -> None:
        self.orchestrator = orchestrator
        self.handle: JobHandle | None = None
        self.feed: JobFeed | None = None
        header = JobHeader(self._retry_failed, self._cancel_job, self._stop)
        self.panel = BatchPanel(
            page_size,
            header,
            on_retry=self._retry_item,
            on_cancel=self._cancel_item,
            on_turn=self._draw_soon,
        )
        # the panel's widgets, where users and tests reach them
        panel = self.panel
        self.header, self.cards, self.widget = panel.header, panel.cards, panel.widget
        self.filter, self.previous, self.next = panel.filter, panel.previous, panel.next
        self.page_label, self.grid = panel.page_label, panel.grid
        self._tasks = KernelTasks()
        self._pictures: dict[str, bytes] = {}
        self._launching: asyncio.Task[JobHandle] | None = None
        self._following: asyncio.Task[None] | None = None
        self._again = False
        self._retried: list[str] = []

    def __repr__(self) -> str:
        if self.feed is None or self.feed.tally is None:
            return "BatchView(recording the job)"
        feed, tally = self.feed, self.feed.tally
        return f"BatchView(job {feed.job_id!r}: {feed.job_status}, {tally.done}/{tally.total} done)"

    @property
    def job_id(self) -> str | None:
        return None if self.handle is None else self.handle.id

    @property
    def page(self) -> int:
        """The page of the grid shown, from 0."""
        return self.panel.page

    @page.setter
    def page(self, page: int) -> None:
        self.panel.page = page

    @property
    def page_size(self) -> int:
        """Cards on one page of the grid."""
        return self.panel.page_size

    @page_size.setter
    def page_size(self, size: int) -> None:
        self.panel.page_size = size

    # ----------------------------------------------------------------- life

    def launch(self, submitting: Coroutine[Any, Any, JobHandle]) -> None:
        """Record and start the job in the background (`start_batch`); `ready` awaits it."""
        self._launching = self._tasks.spawn(self._launch(submitting))
        self._launching.add_done_callback(_retrieved)

    def attach(self, handle: JobHandle) -> None:
        """Show `handle`'s job and follow it while some process runs it."""
        self.handle = handle
        self.feed = JobFeed(handle.id)
        self._follow()

    async def ready(self) -> JobHandle:
        """The job's handle, once it is recorded (raises what recording it raised)."""
        if self.handle is None:
            if self._launching is None:
                raise RuntimeError("this view was given no job")
            return await asyncio.shield(self._launching)
        return self.handle

    async def wait(self) -> JobRecord:
        """Wait until the job ends (or no process runs it any more), after what clicks asked
        for (a retry starts the job again); the grid then shows the final records.
        Interrupting the wait (the kernel's stop button) leaves the job running."""
        handle = await self.ready()
        await self._tasks.answered()
        record = await handle.wait()
        await self.refresh()
        if record.status in JOB_TERMINAL:
            self._say_retried()
        self.resend()
        return record

    async def refresh(self) -> None:
        """Read the job again and draw all of it now."""
        handle = await self.ready()
        assert self.feed is not None
        snapshot = await handle.snapshot()
        self.feed.load(snapshot)
        self.feed.refresh_records(snapshot.items)
        for item in snapshot.items:
            if item.status != ItemStatus.COMPLETED:
                self._pictures.pop(item.id, None)
        self.panel.redraw_all = True
        await self._draw()

    def resend(self) -> None:
        """Send every widget's whole state to the front end again. Updates made by background
        tasks belong to the cell that started them; a saved notebook (nbclient's stored widget
        state) keeps only those of the cell running, so the cell that waits sends all again."""
        pending: list[Any] = [self.widget]
        while pending:
            widget = pending.pop()
            widget.send_state()
            pending += [getattr(widget, name, None) for name in ("layout", "style")]
            pending += list(getattr(widget, "children", ()))
            pending = [each for each in pending if isinstance(each, widgets.Widget)]

    def close(self) -> None:
        """Stop following the job (it keeps running) and remove the widgets."""
        self._tasks.cancel()
        self.widget.close()

    # ------------------------------------------------------------- following

    def _follow(self) -> None:
        """Follow the job (again: a click may have started a new run of it)."""
        self._again = True
        if self._following is None or self._following.done():
            self._following = self._tasks.spawn(self._follow_and_draw())

    async def _follow_and_draw(self) -> None:
        while self._again:
            self._again = False
            self.panel.stopped = False
            following = self._tasks.spawn(self._read_events())
            try:
                while not following.done():
                    await self._draw()
                    await asyncio.wait([following], timeout=DRAW_S)
                following.result()  # an error reading the journal is said below
            except ImageBatchError as error:
                self.header.say(f"stopped following the job: {error}")
            finally:
                following.cancel()
            # nobody runs it any more: a job still said to be running lost its process
            self.panel.stopped = True
            await self.refresh()
            self._say_retried()

    def _say_retried(self) -> None:
        """After a run that retries started: how they ended (`retried page-07: completed`)."""
        retried, self._retried = self._retried, []
        if not retried or self.feed is None:
            return
        self.header.say(retried_words(retried, self.feed.rows))

    async def _read_events(self) -> None:
        """Apply the job's events to the feed until the job ends and nobody runs it."""
        assert self.handle is not None and self.feed is not None
        handle, feed = self.handle, self.feed
        snapshot = await handle.snapshot()
        feed.load(snapshot)
        feed.refresh_records(snapshot.items)
        self.header.title.value = title(snapshot.job)
        self.panel.redraw_all = True
        await apply_events(handle, feed, snapshot.seq)

    # ---------------------------------------------------------------- drawing

    async def _draw(self) -> None:
        if self.feed is None or self.feed.tally is None:
            return
        await self.panel.draw(self.feed, self._picture)

    def _draw_soon(self) -> None:
        """Draw soon (the page or the filter changed), from whichever thread the click came."""
        self._tasks.soon(self._draw())

    async def _picture(self, item_id: str) -> bytes | None:
        """The item's thumbnail, read once (off the loop) and kept."""
        if item_id in self._pictures:
            return self._pictures[item_id]
        assert self.feed is not None and self.handle is not None
        if self.feed.stale(item_id):
            self.feed.records[item_id] = await self.handle.item(item_id)
        record = self.feed.records[item_id]
        if record.thumb_path is None:
            return None
        path = self.orchestrator.workspace.absolute(record.thumb_path)
        try:
            data = await asyncio.to_thread(Path.read_bytes, path)
        except OSError:
            return None  # removed by hand: the card says so instead of a picture
        self._pictures[item_id] = data
        return data

    # --------------------------------------------------------------- requests

    async def retry(self, item_ids: list[str] | None = None) -> str:
        """What Retry does (None: Retry failed): retry these items, by the process running the
        job or else here, with the failed images that reference them (they failed because
        these did); returns what it did, in words."""
        handle = await self.ready()
        retried = await handle.retry_and_run(item_ids, with_dependents=True)
        self._retried += retried.ids
        self._follow()
        return retry_words(retried)

    async def cancel_items(self, item_ids: list[str]) -> str:
        """What a card's Cancel does."""
        asked = await (await self.ready()).cancel_items(item_ids)
        return cancel_items_words(item_ids, asked)

    async def cancel(self) -> str:
        """What Cancel job does: nothing new starts, running images stop."""
        return cancel_words(await (await self.ready()).cancel())

    async def stop(self) -> str:
        """What Stop does: nothing new starts, the images under way are kept (they may be
        billed), then the job's run ends, resumable; whichever process runs it."""
        return stop_answer(await (await self.ready()).stop())

    def _retry_item(self, item_id: str) -> None:
        self._request(self.retry([item_id]))

    def _retry_failed(self) -> None:
        self._request(self.retry(None))

    def _cancel_item(self, item_id: str) -> None:
        self._request(self.cancel_items([item_id]))

    def _cancel_job(self) -> None:
        self._request(self.cancel())

    def _stop(self) -> None:
        self._request(self.stop())

    def _request(self, work: Coroutine[Any, Any, str]) -> None:
        """Run a click's request on the kernel's loop; its outcome is said in the header."""
        self.header.say("…")
        self._tasks.soon(self._answer(work), answering=True)

    async def _answer(self, work: Coroutine[Any, Any, str]) -> None:
        try:
            self.header.say(await work)
        except ImageBatchError as error:
            self.header.say(str(error))

    async def _launch(self, submitting: Coroutine[Any, Any, JobHandle]) -> JobHandle:
        try:
            handle = await submitting
        except ImageBatchError as error:
            self.header.title.value = "the job was not started"
            self.header.say(str(error))
            raise
        self.attach(handle)
        return handle


def _retrieved(task: asyncio.Task[Any]) -> None:
    """The launch's error is shown in the widget and raised by `wait`; never "never retrieved"."""
    if not task.cancelled():
        task.exception()

"""`BatchView`: one job drawn live in a notebook, and what its buttons do.

The view follows the job's events (`JobHandle.events`, live whether this kernel or another
process runs the job) into the core's `JobFeed`, and draws what changed at most every `DRAW_S`
seconds: a 500-image job sends the browser a few updates a second, not one per event. The grid
shows one page of cards (`page_size`), filtered by status; thumbnails are read off the loop as
items complete. Clicks become requests through the handle (`retry_and_run`, `cancel_items`,
`cancel`), which the process running the job carries out, or this kernel when none does.
Progress is widget state only: nothing here prints.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Coroutine
from contextlib import aclosing
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..errors import ImageBatchError
from ..feed import JobFeed
from ..handle import JobHandle
from ..records import JobRecord
from ..service import Orchestrator
from ..states import JOB_TERMINAL, ItemStatus
from .cards import PICTURE_PX, ItemCard, JobHeader

__all__ = ["DRAW_S", "FILTERS", "PAGE_SIZE", "BatchView"]

DRAW_S = 0.25
"""Changes are drawn together at most this often."""
LIVENESS_S = 2.0
"""While the job is quiet, how often to look that some process still runs it."""
PAGE_SIZE = 24
FILTERS = ("all", "failed", "running", "pending", "completed", "cancelled")


class BatchView:
    """A job's live grid (`widget`) and its `JobHandle` (`handle`, once the job is recorded)."""

    def __init__(self, orchestrator: Orchestrator, *, page_size: int = PAGE_SIZE) -> None:
        self.orchestrator = orchestrator
        self.page_size = max(1, page_size)
        self.handle: JobHandle | None = None
        self.feed: JobFeed | None = None
        self.page = 0
        self.header = JobHeader(self._retry_failed, self._cancel_job)
        self.header.title.value = "recording the job…"
        self.cards: list[ItemCard] = []
        self.filter = widgets.Dropdown(options=FILTERS, value="all", description="show")
        self.filter.layout.width = "220px"
        self.filter.observe(lambda _: self._turn_to(0), names="value")
        self.previous = widgets.Button(icon="chevron-left", tooltip="Previous page")
        self.next = widgets.Button(icon="chevron-right", tooltip="Next page")
        for button in (self.previous, self.next):
            button.layout.width = "40px"
        self.previous.on_click(lambda _: self._turn_to(self.page - 1))
        self.next.on_click(lambda _: self._turn_to(self.page + 1))
        self.page_label = widgets.Label()
        self.grid = widgets.GridBox(
            layout=widgets.Layout(
                grid_template_columns=f"repeat(auto-fill, {PICTURE_PX + 20}px)",
                grid_gap="8px",
                margin="8px 0 0 0",
            )
        )
        self.grid.add_class("imagebatch-grid")
        pager = widgets.HBox([self.filter, self.previous, self.page_label, self.next])
        self.widget = widgets.VBox([self.header, pager, self.grid])
        self.widget.add_class("imagebatch-batch")
        self._loop = asyncio.get_running_loop()
        self._pictures: dict[str, bytes] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._answering: set[asyncio.Task[Any]] = set()
        self._launching: asyncio.Task[JobHandle] | None = None
        self._following: asyncio.Task[None] | None = None
        self._drawing = asyncio.Lock()
        self._redraw_all = True
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

    # ----------------------------------------------------------------- life

    def launch(self, submitting: Coroutine[Any, Any, JobHandle]) -> None:
        """Record and start the job in the background (`start_batch`); `ready` awaits it."""
        self._launching = self._spawn(self._launch(submitting))
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
        while self._answering:
            await asyncio.wait(set(self._answering))
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
        self._redraw_all = True
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
        for task in list(self._tasks):
            task.cancel()
        self.widget.close()

    # ------------------------------------------------------------- following

    def _follow(self) -> None:
        """Follow the job (again: a click may have started a new run of it)."""
        self._again = True
        if self._following is None or self._following.done():
            self._following = self._spawn(self._follow_and_draw())

    async def _follow_and_draw(self) -> None:
        while self._again:
            self._again = False
            following = self._spawn(self._read_events())
            try:
                while not following.done():
                    await self._draw()
                    await asyncio.wait([following], timeout=DRAW_S)
                following.result()  # an error reading the journal is said below
            except ImageBatchError as error:
                self.header.say(f"stopped following the job: {error}")
            finally:
                following.cancel()
            await self.refresh()
            self._say_retried()

    def _say_retried(self) -> None:
        """After a run that retries started: how they ended (`retried page-07: completed`)."""
        retried, self._retried = self._retried, []
        if not retried or self.feed is None:
            return
        ended = Counter(str(self.feed.rows[item_id].status) for item_id in retried)
        if len(retried) == 1:
            self.header.say(f"retried {retried[0]}: {next(iter(ended))}")
        else:
            counts = ", ".join(f"{count} {status}" for status, count in ended.items())
            self.header.say(f"retried {len(retried)} images: {counts}")

    async def _read_events(self) -> None:
        """Apply the job's events to the feed until the job ends and nobody runs it."""
        assert self.handle is not None and self.feed is not None
        handle, feed = self.handle, self.feed
        snapshot = await handle.snapshot()
        feed.load(snapshot)
        feed.refresh_records(snapshot.items)
        self.header.title.value = _title(snapshot.job)
        self._redraw_all = True
        seq = snapshot.seq
        while await handle.runner_live():
            try:
                async with asyncio.timeout(LIVENESS_S):
                    async with aclosing(handle.events(after=seq)) as events:
                        async for event in events:
                            feed.apply(event)
                            seq = event.seq
                            if feed.ended(event):
                                break  # the run ended: look whether another one goes on
            except TimeoutError:
                continue

    # ---------------------------------------------------------------- drawing

    def _visible(self) -> tuple[list[str], int]:
        """The ids on the current page, and how many items pass the filter."""
        assert self.feed is not None
        wanted = self.filter.value
        ids = [row.id for row in self.feed.rows.values() if wanted == "all" or row.status == wanted]
        pages = max(1, -(-len(ids) // self.page_size))
        self.page = min(max(self.page, 0), pages - 1)
        start = self.page * self.page_size
        return ids[start : start + self.page_size], len(ids)

    async def _draw(self) -> None:
        if self.feed is None or self.feed.tally is None:
            return
        async with self._drawing:
            feed, tally = self.feed, self.feed.tally
            changes = feed.take()
            redraw = self._redraw_all or changes.reloaded
            self._redraw_all = False
            self.header.show(tally, feed.job_status, time.time())
            if changes.lines:
                self.header.last.value = changes.lines[-1]
            ids, matching = self._visible()
            self._draw_pager(matching)
            while len(self.cards) < len(ids):
                self.cards.append(ItemCard(self._retry_item, self._cancel_item))
                self.grid.children = tuple(self.cards)
            changed = {row.id for row in changes.rows}
            for card, item_id in zip(self.cards, ids, strict=False):
                if redraw or item_id in changed or card.item_id != item_id:
                    row = feed.rows[item_id]
                    picture = await self._picture(item_id) if row.status == "completed" else None
                    card.show(feed.rows[item_id], picture)  # the row may have moved on
            for card in self.cards[len(ids) :]:
                card.hide()

    def _draw_pager(self, matching: int) -> None:
        pages = max(1, -(-matching // self.page_size))
        first = self.page * self.page_size + 1 if matching else 0
        last = min(matching, (self.page + 1) * self.page_size)
        self.page_label.value = f"{first}-{last} of {matching}"
        self.previous.disabled = self.page == 0
        self.next.disabled = self.page >= pages - 1

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

    def _turn_to(self, page: int) -> None:
        self.page = page
        self._redraw_all = True
        self._soon(self._draw())

    # --------------------------------------------------------------- requests

    async def retry(self, item_ids: list[str] | None = None) -> str:
        """What Retry does (None: Retry failed): retry these items, by the process running the
        job or else here, with the failed images that reference them (they failed because
        these did); returns what it did, in words."""
        handle = await self.ready()
        retried = await handle.retry_and_run(item_ids, with_dependents=True)
        self._retried += retried.ids
        self._follow()
        if not retried.ids:
            return "nothing to retry: no image failed or was cancelled"
        what = retried.ids[0] if len(retried.ids) == 1 else f"{len(retried.ids)} images"
        where = "here" if retried.here else "in the process running the job"
        return f"retrying {what} {where}"

    async def cancel_items(self, item_ids: list[str]) -> str:
        """What a card's Cancel does."""
        asked = await (await self.ready()).cancel_items(item_ids)
        if not asked:
            return f"{', '.join(item_ids)} had already finished: nothing to cancel"
        return f"cancelling {', '.join(asked)}"

    async def cancel(self) -> str:
        """What Cancel job does: nothing new starts, running images stop."""
        job = await (await self.ready()).cancel()
        if job.cancel_requested:
            return "cancel requested: nothing new starts, running images stop"
        return f"job {job.status}"

    def _retry_item(self, item_id: str) -> None:
        self._request(self.retry([item_id]))

    def _retry_failed(self) -> None:
        self._request(self.retry(None))

    def _cancel_item(self, item_id: str) -> None:
        self._request(self.cancel_items([item_id]))

    def _cancel_job(self) -> None:
        self._request(self.cancel())

    def _request(self, work: Coroutine[Any, Any, str]) -> None:
        """Run a click's request on the kernel's loop; its outcome is said in the header."""
        self.header.say("…")
        self._soon(self._answer(work), answering=True)

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

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """A task on the kernel's loop, kept until it ends."""
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _soon(self, work: Coroutine[Any, Any, Any], *, answering: bool = False) -> None:
        """`_spawn` from wherever a click arrives: the loop's thread, or another one.
        `answering`: a click's request, which `wait` waits for."""
        try:
            here = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            here = False
        if here:
            self._spawn_request(work, answering)
        else:
            self._loop.call_soon_threadsafe(self._spawn_request, work, answering)

    def _spawn_request(self, work: Coroutine[Any, Any, Any], answering: bool) -> None:
        task = self._spawn(work)
        if answering:
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)


def _retrieved(task: asyncio.Task[Any]) -> None:
    """The launch's error is shown in the widget and raised by `wait`; never "never retrieved"."""
    if not task.cancelled():
        task.exception()


def _title(job: JobRecord) -> str:
    config = job.config
    name = config.name or config.key
    model = f" {config.model}" if config.model else ""
    return f"{name} · job {job.id} · {config.provider}{model}"

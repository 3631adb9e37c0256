"""The job screen: progress, one row per image, a preview and the job's log, live.

A worker follows the job's events through its handle (here or in another process, the same
way) into a `JobFeed`, and posts `JobChanged`; those coalesce, and the handler draws whatever
piled up since the last redraw. Key presses hand their work to workers; errors become
notifications in words.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header

from orchestrator import ItemStatus, JobSnapshot
from orchestrator.events import JobStarted
from orchestrator.feed import JobFeed

from .. import requests
from ..advice import reported
from ..graphics import load_picture
from ..messages import JobChanged, JobLaunched, RunStopped
from ..session import Session
from ..widgets import EventLog, ItemsTable, JobProgress, Preview
from ..widgets.items_table import FILTERS
from ..widgets.preview import make_preview
from .confirm import ConfirmScreen

__all__ = ["JobScreen"]

DRAW_EVERY_S = 0.1
"""The job's rows, progress and log are drawn at most this often, however fast events come."""
SETTLE_S = 0.05
"""How long the cursor must rest on an image before its preview loads."""
RUNNER_CHECK_S = 2.0
"""How often a running job is checked for a live process running it."""


class JobScreen(Screen[None]):
    """One job, live."""

    BINDINGS = [
        Binding("escape", "back", "Jobs", tooltip="Back to the list of jobs"),
        Binding("r", "retry_selected", "Retry", tooltip="Retry the selected image"),
        Binding("R", "retry_failed", "Retry all", tooltip="Retry every failed image"),
        Binding("x", "cancel_selected", "Cancel", tooltip="Cancel the selected image"),
        Binding("X", "cancel_job", "Cancel job", tooltip="Cancel the whole job"),
        Binding("s", "resume", "Resume", tooltip="Run an interrupted job here"),
        Binding(
            "S",
            "stop",
            "Stop",
            show=False,
            tooltip="Stop the job's run once its requests under way are kept (resumable)",
        ),
        Binding("p", "toggle_preview", "Prompt", tooltip="Preview the image or its prompts"),
        Binding("f", "filter", "Filter", tooltip="Show only one status (cycles)"),
        Binding("o", "open_image", "Open", tooltip="Open the image in a viewer, or show its path"),
    ]

    def __init__(self, session: Session, job_id: str) -> None:
        super().__init__()
        self.session = session
        self.handle = session.orchestrator.handle(job_id)
        self.feed = JobFeed(job_id)
        self.job_status = "loading"
        self.stopped = job_id in session.stopped_runs
        """The job's run ended without the journal saying so, and none started since: this
        app's run stopped on an error (`RunStopped`, or before this screen was opened), or no
        live process runs it (`check_runner`)."""
        self._runs_seen = 0
        """Runs started while this screen follows the job (`JobStarted` events)."""
        self._drawn_at = 0.0
        self._draw_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield JobProgress(id="progress")
        with Horizontal(id="body"):
            yield ItemsTable(id="items")
            yield make_preview(self.session.pictures, id="preview")
        yield EventLog(id="events")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"job {self.handle.id}"
        self.query_one(EventLog).border_title = "events"
        self.follow()
        self.set_interval(1.0, self.draw_progress)
        self.set_interval(RUNNER_CHECK_S, self.check_runner)

    # ------------------------------------------------------------ following

    @work(exclusive=True, group="follow")
    async def follow(self) -> None:
        """Read the job, then take its events as they come, here or from another process."""
        with reported(self, "follow the job"):
            snapshot = await self.handle.snapshot()
            self._load(snapshot)
            async with aclosing(self.handle.events(after=0)) as events:
                async for event in events:
                    if event.seq <= snapshot.seq:
                        self.feed.history(event)
                    else:
                        self.feed.apply(event)
                        self.job_status = self.feed.job_status
                        if isinstance(event, JobStarted):
                            self.stopped, self._runs_seen = False, self._runs_seen + 1
                    self.post_message(JobChanged())
                    if event.seq > snapshot.seq and self.feed.ended(event):
                        snapshot = await self.handle.snapshot()  # the final records
                        self._load(snapshot)

    def _load(self, snapshot: JobSnapshot) -> None:
        self.feed.load(snapshot, self.session.now())
        self.job_status = self.feed.job_status
        self.post_message(JobChanged())

    def on_run_stopped(self, message: RunStopped) -> None:
        """This app's run of the job stopped on an error: say so, and stop counting down."""
        self.stopped = True
        stamp = time.strftime("%H:%M:%S", time.localtime(self.session.now()))
        self.query_one(EventLog).write([f"{stamp} the run stopped: {message.why}"])
        self.draw_progress()

    def on_job_changed(self, message: JobChanged) -> None:
        """Draw what changed, at most every `DRAW_EVERY_S` (the rest waits for the next)."""
        wait = self._drawn_at + DRAW_EVERY_S - time.monotonic()
        if wait <= 0:
            self.draw_changes()
        elif self._draw_timer is None:
            self._draw_timer = self.set_timer(wait, self.draw_changes)

    def draw_changes(self) -> None:
        self._drawn_at, self._draw_timer = time.monotonic(), None
        changes = self.feed.take()
        table = self.query_one(ItemsTable)
        if changes.reloaded:
            table.reload(self.feed.rows.values())
        else:
            table.update_rows(changes.rows)
        self.query_one(EventLog).write(changes.lines)
        self.draw_progress()
        selected = table.selected_id
        changed = changes.reloaded or any(row.id == selected for row in changes.rows)
        if selected is not None and changed:  # a reload (the run's end) may change it too
            self.preview(selected, settle=False)

    @work(exclusive=True, group="runner")
    async def check_runner(self) -> None:
        """A job the journal says is running, but that no live process runs (its process was
        killed, or it stopped on an error this app did not see): shown stopped."""
        if self.job_status != "running" or self.stopped:
            return
        runs = self._runs_seen
        if not await self.handle.runner_live() and runs == self._runs_seen:  # none began since
            self.stopped = True
            self.draw_progress()

    def draw_progress(self) -> None:
        if self.feed.tally is not None:
            now = self.session.now()
            stopped = self.stopped and self.job_status == "running"
            self.query_one(JobProgress).show(self.feed.tally, self.job_status, now, stopped=stopped)

    # ------------------------------------------------------------ preview

    @on(ItemsTable.Highlighted)
    def _highlighted(self, message: ItemsTable.Highlighted) -> None:
        if message.item_id is None:  # no image shown (a filter nothing matches)
            self.workers.cancel_group(self, "preview")
            self.query_one(Preview).clear()
        else:
            self.preview(message.item_id)

    @work(exclusive=True, group="preview")
    async def preview(self, item_id: str, settle: bool = True) -> None:
        """Show the image under the cursor (reading its final record first if need be)."""
        if settle:
            await asyncio.sleep(SETTLE_S)
        with reported(self, "show the image"):
            row = self.feed.rows[item_id]
            if row.status in (ItemStatus.COMPLETED, ItemStatus.FAILED) and self.feed.stale(item_id):
                self.feed.refresh_records((await self.handle.snapshot()).items)
            record = self.feed.records.get(item_id)
            path = record.image_path or record.thumb_path if record else None
            workspace = self.session.orchestrator.workspace
            picture = None
            if path and row.status == ItemStatus.COMPLETED:
                picture = await asyncio.to_thread(load_picture, workspace.absolute(path))
            self.query_one(Preview).show(row, record, picture)

    def action_toggle_preview(self) -> None:
        preview = self.query_one(Preview)
        preview.show_prompt = not preview.show_prompt

    def action_filter(self) -> None:
        table = self.query_one(ItemsTable)
        table.status_filter = FILTERS[(FILTERS.index(table.status_filter) + 1) % len(FILTERS)]

    def show_only(self, status: str | None) -> None:
        self.query_one(ItemsTable).status_filter = status

    # ------------------------------------------------------------ requests

    def action_back(self) -> None:
        self.dismiss()

    def action_retry_selected(self) -> None:
        if (item_id := self._selected()) is not None:
            self.request("retry", lambda: requests.retry(self.handle, [item_id]))

    def action_retry_failed(self) -> None:
        self.request("retry", lambda: requests.retry(self.handle, None))

    def action_cancel_selected(self) -> None:
        if (item_id := self._selected()) is not None:
            self.request("cancel", lambda: requests.cancel_items(self.handle, [item_id]))

    def action_cancel_job(self) -> None:
        def confirmed(yes: bool | None) -> None:
            if yes:
                self.request("cancel the job", lambda: requests.cancel_job(self.handle))

        question = f"Cancel job {self.handle.id}? Images in flight stop; finished ones stay."
        self.app.push_screen(ConfirmScreen(question), confirmed)

    def action_stop(self) -> None:
        self.request("stop", lambda: requests.stop(self.handle))

    def action_resume(self) -> None:
        self.request("resume", lambda: requests.resume(self.session.orchestrator, self.handle))

    @work(group="requests")
    async def request(self, doing: str, work: Callable[[], Awaitable[str]]) -> None:
        """Carry out one key's request and say what came of it."""
        with reported(self, doing):
            self.notify(await work(), title=doing.capitalize())
            if self.session.orchestrator.running_here(self.handle.id):
                self.post_message(JobLaunched(self.handle.id))

    @work(group="requests")
    async def action_open_image(self) -> None:
        item_id = self._selected()
        record = self.feed.records.get(item_id) if item_id else None
        if record is None or not record.image_path:
            self.notify("this image has not been made yet", severity="warning")
            return
        path = self.session.orchestrator.workspace.absolute(record.image_path)
        with reported(self, "open the image"):
            if not await requests.open_in_viewer(path):
                self.app.copy_to_clipboard(str(path))
                self.notify(
                    f"{path}\n(no image viewer here; path copied where the terminal allows)",
                    title="Image",
                    timeout=15,
                )

    def _selected(self) -> str | None:
        item_id = self.query_one(ItemsTable).selected_id
        if item_id is None:
            self.notify("select an image first", severity="warning")
        return item_id

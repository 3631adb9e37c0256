"""The jobs screen: every job of the workspace, live, and a way in for a first-time user."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from orchestrator import JobRecord
from orchestrator.demo import demo_spec
from orchestrator.states import JOB_TERMINAL

from ..advice import reported
from ..formats import shown_path
from ..messages import JobLaunched, JobsListed
from ..session import Session
from ..widgets import JobLine, JobsTable
from .job import JobScreen

__all__ = ["JobsScreen"]

LIST_EVERY_S = 1.0
DEMO_COUNT = 12


class JobsScreen(Screen[None]):
    """Every job of the workspace, newest first."""

    BINDINGS = [
        Binding("enter", "open_job", "Open job", tooltip="Open the selected job"),
        Binding("d", "demo", "Demo batch", tooltip="Run the demo batch on the mock provider"),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="empty")
        yield JobsTable(id="jobs")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "jobs"
        self.sub_title = shown_path(self.session.orchestrator.workspace.root)
        self.list_jobs()
        self.set_interval(LIST_EVERY_S, self.list_jobs)

    @work(exclusive=True, group="list")
    async def list_jobs(self) -> None:
        """Read the jobs and who runs each; the list is drawn by `on_jobs_listed`."""
        with reported(self, "list the jobs"):
            jobs = await self.session.orchestrator.jobs()
            lines = [JobLine(job, await self._runner(job)) for job in jobs]
            for line in lines:
                if line.runner == "here":  # the app keeps watch over how its runs end
                    self.post_message(JobLaunched(line.job.id))
            self.post_message(JobsListed(lines))

    async def _runner(self, job: JobRecord) -> str:
        if job.status in JOB_TERMINAL:
            return ""
        if self.session.orchestrator.running_here(job.id):
            return "here"
        if await self.session.orchestrator.handle(job.id).runner_live():
            return "elsewhere"
        return "nobody" if job.started_at else "not started"

    def on_jobs_listed(self, message: JobsListed) -> None:
        self.query_one(JobsTable).show(message.lines, self.session.now())
        empty = not message.lines
        self.set_class(empty, "-empty")
        if empty:
            self.query_one("#empty", Static).update(
                f"No jobs in {shown_path(self.session.orchestrator.workspace.root)} yet.\n\n"
                f"Press d to run the demo batch: {DEMO_COUNT} pictures drawn by the offline mock "
                "provider (no key, no network, a few injected errors to show retries).\n"
                "Press n for a batch of your own: prompts one per line, or a spec file."
            )

    @on(JobsTable.Open)
    def _open(self, message: JobsTable.Open) -> None:
        self.open_job(message.job_id)

    def action_open_job(self) -> None:
        job_id = self.query_one(JobsTable).selected_id
        if job_id is None:
            self.notify("no job yet: press d for the demo batch or n for a new one")
        else:
            self.open_job(job_id)

    def open_job(self, job_id: str) -> None:
        self.app.push_screen(JobScreen(self.session, job_id))

    @work(group="demo")
    async def action_demo(self) -> None:
        """Run the demo batch here and open it."""
        with reported(self, "start the demo batch"):
            handle = await self.session.orchestrator.submit(demo_spec(DEMO_COUNT))
            self.post_message(JobLaunched(handle.id))
            self.list_jobs()
            self.open_job(handle.id)

"""The app: wiring only. One `Orchestrator` for the app's lifetime, opened on mount and closed
on unmount, on Textual's own event loop; screens do the rest.

```python
make_app(Workspace.resolve(None, os.environ)).run()
```
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from orchestrator import JobRecord, Orchestrator, Workspace, load_spec
from orchestrator.cli.leave import EXIT_HUNG_UP, EXIT_TERMINATED, hung_up_stops, leave_terminal
from orchestrator.errors import ImageBatchError
from orchestrator.mounts import network_file_system, shared_warning
from orchestrator.providers import registry
from orchestrator.wording import requests_under_way

from .advice import advice, reported
from .commands import palette_commands
from .graphics import PictureMode, picture_kind
from .messages import JobLaunched, RunStopped
from .screens import HelpScreen, JobScreen, JobsScreen, NewBatchScreen
from .session import Session

__all__ = ["ImageBatchApp", "make_app"]

OrchestratorFactory = Callable[[], Orchestrator]


class ImageBatchApp(App[None]):
    """Run, watch and fix batches of images."""

    CSS_PATH = "app.tcss"
    TITLE = "imagebatch"
    BINDINGS = [
        Binding("n", "new_batch", "New batch", tooltip="Start a new batch (prompts or a spec)"),
        Binding("question_mark", "help", "Help", tooltip="Show the keys and what they do"),
        Binding(
            "q",
            "quit",
            "Quit",
            tooltip="Quit: the requests under way finish first (q again: at once); jobs stay "
            "resumable",
        ),
    ]

    def __init__(
        self,
        make_orchestrator: OrchestratorFactory,
        *,
        spec: Path | None = None,
        pictures: PictureMode = "auto",
        now: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._make_orchestrator = make_orchestrator
        self._spec = spec
        self._pictures = picture_kind(pictures)
        self._now = now
        self._watched: set[str] = set()
        self._quitting = False
        """A first `q` is letting the requests under way finish before the app quits."""
        self._quit_code = 0
        """What the app exits with: 143 once SIGTERM asked it to quit."""
        self.session: Session | None = None

    async def on_mount(self) -> None:
        loop = asyncio.get_running_loop()
        if hung_up_stops():
            self._stop_on_hang_up(loop)
        loop.add_signal_handler(signal.SIGTERM, self._terminated)
        orchestrator = self._make_orchestrator()
        names = sorted({*registry.available(), *orchestrator.providers})
        self.session = Session(orchestrator, self._pictures, tuple(names), self._now)
        await self.push_screen(JobsScreen(self.session))
        self.warn_if_shared()
        if self._spec is not None:
            self.run_spec(self._spec)

    @work(group="checks")
    async def warn_if_shared(self) -> None:
        """Say so when the workspace is on a network file system (see `orchestrator.mounts`):
        the command line's warning goes to standard error, which the app does not show."""
        assert self.session is not None
        root = self.session.orchestrator.workspace.root
        kind = await asyncio.to_thread(network_file_system, root)
        if kind is not None:
            said = shared_warning(root, kind)
            self.notify(
                said[0].upper() + said[1:] + ".", title="Workspace", severity="warning", timeout=30
            )

    async def action_quit(self) -> None:
        """Quit. While requests are under way (they may be billed), the first `q` starts no
        new one and quits once those are kept; a second quits at once. Jobs stay resumable."""
        orchestrator = self.session.orchestrator if self.session is not None else None
        calls = None if orchestrator is None or self._quitting else orchestrator.wind_down()
        if not calls:
            self.exit(return_code=self._quit_code)
            return
        assert orchestrator is not None
        self._quitting = True
        self.notify(
            f"Waiting for {requests_under_way(calls)} (they may be billed), then quitting. "
            "Press q again to quit now.",
            title="Quitting (SIGTERM)" if self._quit_code == EXIT_TERMINATED else "Quitting",
            timeout=60,
        )
        self._quit_once_stopped(orchestrator)

    @work(group="quit")
    async def _quit_once_stopped(self, orchestrator: Orchestrator) -> None:
        running = [orchestrator.task_of(job_id) for job_id in list(orchestrator.runners)]
        tasks = [task for task in running if task is not None]
        if tasks:
            await asyncio.wait(tasks)
        self.exit(return_code=self._quit_code)

    def _terminated(self) -> None:
        """SIGTERM (`kill`, a service manager) quits as `q` does: the requests under way are
        kept first, and a second SIGTERM quits at once. Without this the signal killed the
        app where it stood, its terminal left in the app's screen."""
        self._quit_code = EXIT_TERMINATED
        self.run_worker(self.action_quit(), group="quit-asked")

    async def on_unmount(self) -> None:
        if self.session is not None:
            await self.session.orchestrator.aclose()  # jobs running here stay resumable

    def _stop_on_hang_up(self, loop: asyncio.AbstractEventLoop) -> None:
        """When the terminal closes (an ssh session that dropped), quit as `q` does, so the
        jobs running here stop in order and stay resumable, instead of dying on the signal.

        The kernel sends SIGCONT right after SIGHUP, and Textual answers SIGCONT by taking the
        terminal back: a new output thread, which dies writing to the closed terminal, and the
        app's shutdown then waits on it forever (a hung process that keeps its jobs' locks).
        So SIGHUP is handled as it arrives (Python runs it before SIGCONT's handler), not
        through the loop: output goes to the null device at once, and SIGCONT is ignored from
        then on."""
        hung_up = False
        resume = signal.getsignal(signal.SIGCONT)

        def on_hang_up(signum: int, frame: object) -> None:
            nonlocal hung_up
            hung_up = True
            leave_terminal()
            loop.call_soon_threadsafe(functools.partial(self.exit, return_code=EXIT_HUNG_UP))

        def on_continue(signum: int, frame: Any) -> None:
            if not hung_up and callable(resume):
                resume(signum, frame)

        signal.signal(signal.SIGHUP, on_hang_up)
        signal.signal(signal.SIGCONT, on_continue)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from palette_commands(self, screen)

    def action_new_batch(self) -> None:
        if self.session is None or isinstance(self.screen, NewBatchScreen):
            return
        session = self.session

        def started(job_id: str | None) -> None:
            if job_id is not None:
                self.post_message(JobLaunched(job_id))
                self.push_screen(JobScreen(session, job_id))

        self.push_screen(NewBatchScreen(session), started)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    @work(group="spec")
    async def run_spec(self, path: Path) -> None:
        """Run the spec given on the command line, and show it."""
        assert self.session is not None
        with reported(self, f"run {path.name}"):
            spec = await asyncio.to_thread(load_spec, path)
            handle = await self.session.orchestrator.submit(spec)
            self.post_message(JobLaunched(handle.id))
            await self.push_screen(JobScreen(self.session, handle.id))

    def on_job_launched(self, message: JobLaunched) -> None:
        if self.session is not None:
            self.session.stopped_runs.pop(message.job_id, None)
        if message.job_id not in self._watched:
            self._watched.add(message.job_id)
            self.keep_watch(message.job_id)

    @work(group="runs")
    async def keep_watch(self, job_id: str) -> None:
        """Say how a run of this app's ends (a lost lock, an error, or the job's end)."""
        assert self.session is not None
        try:
            with reported(self, f"run job {job_id}"):
                job = await self._wait_for_run(job_id)
                done = job.status == "completed"
                self.notify(
                    f"job {job_id}: {job.status}",
                    title="Job ended",
                    severity="information" if done else "warning",
                )
        finally:
            self._watched.discard(job_id)

    async def _wait_for_run(self, job_id: str) -> JobRecord:
        """The job once its run here ends; a run that stopped on an error is told to the job's
        screens (they show it stopped), then the error goes on to be advised."""
        assert self.session is not None
        try:
            return await self.session.orchestrator.handle(job_id).wait()
        except ImageBatchError as error:
            said = self.session.stopped_runs[job_id] = advice(error)
            for screen in self.screen_stack:
                if isinstance(screen, JobScreen) and screen.handle.id == job_id:
                    screen.post_message(RunStopped(job_id, said))
            raise


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, while standard error is a real file.

    Post-processing runs in worker processes; starting the first one also starts the resource
    tracker, handing it `sys.stderr.fileno()`. Inside a running Textual app that is Textual's
    capture, whose fileno is -1, and the start fails ("bad value(s) in fds_to_keep"). Once
    started here, the tracker is reused.
    """
    if sys.platform != "win32":
        resource_tracker.ensure_running()


def make_app(
    workspace: Workspace | None = None,
    spec: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    pictures: PictureMode = "auto",
    now: Callable[[], float] = time.time,
    orchestrator: OrchestratorFactory | None = None,
    stale_after_s: float = 300.0,
) -> ImageBatchApp:
    """The app, for the CLI (`imagebatch tui`) and the tests.

    `workspace` defaults as the CLI's does; `env` (default: this process's) gives the providers
    their keys; `pictures` says how to draw images (`auto`: the best the terminal has); `now`
    is the clock ages are read from; `stale_after_s` is when another process's lock counts as
    abandoned; `orchestrator` builds the app's orchestrator on mount
    instead (tests pass scripted providers or settings through it).
    """
    _start_resource_tracker()
    environ = dict(os.environ if env is None else env)
    where = workspace or Workspace.resolve(None, environ)

    def default() -> Orchestrator:
        return Orchestrator(where, env=environ, stale_after_s=stale_after_s)

    return ImageBatchApp(orchestrator or default, spec=spec, pictures=pictures, now=now)

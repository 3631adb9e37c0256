"""The orchestrator: one workspace's jobs, run on the current event loop, held through handles.

```python
async with Orchestrator(Workspace.resolve(None, os.environ), env=os.environ) as orchestrator:
    job = await orchestrator.submit(spec)      # checked, recorded, running here
    await job.wait()
```

`create` records a job (nothing runs); `start` runs a recorded job here; `submit` does both,
recording the job only once its key's lock is held. Every job this process runs is a task on
the running loop with a heartbeat that keeps its lock; leaving the `async with` (or `aclose`)
interrupts them, leaving them resumable. Jobs on one provider and key share one lane.

How one job runs here (its lock kept, its webhook sender beside it) is `job_run.py`; what the
jobs share (lanes, the workspace's quota file) is `sharing.py`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType

from .bus import EventBus
from .cache import ResultCache
from .cache_ahead import in_cache
from .clock import Clock, SystemClock
from .errors import ConfigError
from .eventlog import LOGGER
from .handle import JobHandle
from .job_run import run_job
from .journal import Journal
from .lanes import Lanes
from .locks import LockOwner
from .mounts import network_file_system, shared_warning
from .pipeline import PipelineSettings, Runner
from .preflight import check_spec, check_webhook, provider_for
from .providers.base import ProviderFactory
from .quota import QUOTA_FILE
from .records import JobRecord
from .reference_urls import fetch_urls, keep_fetched
from .sharing import Sharing
from .spec import JobSpec
from .stages import PostStage
from .states import JOB_TERMINAL
from .storage import Workspace
from .webhooks.policy import DeliverySettings

__all__ = ["Orchestrator"]


class Orchestrator:
    """Jobs of one workspace, run on the current event loop."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        env: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        settings: PipelineSettings | None = None,
        stale_after_s: float = 300.0,
        heartbeat_s: float | None = None,
        providers: Mapping[str, ProviderFactory] | None = None,
        post: PostStage | None = None,
        webhooks: DeliverySettings | None = None,
    ) -> None:
        # absolute from the start: worker processes, and a later change of folder, see the same
        self.workspace = (
            workspace if workspace.root.is_absolute() else Workspace(workspace.root.absolute())
        )
        self.providers = dict(providers or {})
        self.env = dict(env or {})
        self.clock = clock or SystemClock()
        self.settings = settings or PipelineSettings()
        self.stale_after_s = stale_after_s
        self.heartbeat_s = heartbeat_s or max(1.0, min(30.0, stale_after_s / 10))
        self.bus = EventBus()
        self.lanes = Lanes()
        self.shared = Sharing(self.lanes, workspace.root / QUOTA_FILE)
        """The lanes and the quota file its jobs share."""
        self.post = post or PostStage()
        self.cache = ResultCache(workspace.cache_dir)
        """Images of earlier identical requests (opened on first use)."""
        self.webhooks = webhooks or DeliverySettings()
        """How jobs' webhook messages are tried and queued."""
        self._tasks: dict[str, asyncio.Task[JobRecord]] = {}
        self.runners: dict[str, Runner] = {}
        """The runners of the jobs running here, while they run."""
        self._opening = asyncio.Lock()

    @functools.cached_property
    def journal(self) -> Journal:
        """The workspace's journal, opened (and the workspace made) on first use. On the event
        loop, `await ready()` opens it off the loop instead."""
        self.workspace.prepare()
        _warn_if_shared(self.workspace)
        return Journal(
            self.workspace.journal_dir,
            bus=self.bus,
            stale_after_s=self.stale_after_s,
            clock=self.clock,
        )

    async def ready(self) -> Journal:
        """The journal, opened in a thread the first time (opening SQLite takes a while)."""
        if "journal" not in self.__dict__:
            async with self._opening:
                if "journal" not in self.__dict__:
                    await asyncio.to_thread(lambda: self.journal)
        return self.journal

    async def __aenter__(self) -> Orchestrator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Interrupt the jobs running here (they stay resumable) and close the journal."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self.post.close()
        await asyncio.to_thread(self.cache.close)
        if self.shared.quota_open:
            await asyncio.to_thread(self.shared.close)
        if "journal" in self.__dict__:
            await asyncio.to_thread(self.journal.close)

    # ---------------------------------------------------------------- handles

    def handle(self, job_id: str) -> JobHandle:
        """A handle on any job of the workspace (it need not run here)."""
        return JobHandle(self, job_id)

    async def jobs(self) -> list[JobRecord]:
        return await (await self.ready()).jobs()

    async def unfinished(self) -> list[JobRecord]:
        """Jobs that have not reached a terminal status, oldest first."""
        return [job for job in await (await self.ready()).jobs() if job.status not in JOB_TERMINAL]

    async def clear_lock(self, key: str) -> LockOwner | None:
        """End a key's lock by hand, whoever holds it; returns whose it was. A live holder's next
        write is refused, so it stops before anyone else writes."""
        return await (await self.ready()).clear_lock(key)

    def running_here(self, job_id: str) -> bool:
        task = self._tasks.get(job_id)
        return task is not None and not task.done()

    def wind_down(self) -> int | None:
        """Start no more requests in any job running here; the calls under way finish and
        their images are kept (they may be billed), then each run ends, interrupted and
        resumable. How many calls are under way; None if no job runs here."""
        if not self.runners:
            return None
        return sum(runner.wind_down() for runner in list(self.runners.values()))

    def task_of(self, job_id: str) -> asyncio.Task[JobRecord] | None:
        """The task running the job in this process, if any (done or not)."""
        return self._tasks.get(job_id)

    # ------------------------------------------------------- create and start

    async def create(self, spec: JobSpec) -> JobHandle:
        """Check the spec and record the job as pending; nothing runs. Nothing is written, not
        even the workspace folder, if the spec is refused."""
        spec, prompts = await self._checked(spec)
        job, _ = await (await self.ready()).create_job(spec, prompts=prompts)
        return self.handle(job.id)

    async def submit(
        self, spec: JobSpec, *, before_start: Callable[[JobHandle], Awaitable[None]] | None = None
    ) -> JobHandle:
        """Check the spec, record the job holding its key's lock, and start running it here.
        `before_start` is awaited once the job is recorded and before any of it runs (what a
        front end says first); if it raises, the lock is given back and the job stays pending."""
        spec, prompts = await self._checked(spec)
        journal = await self.ready()
        job, owner = await journal.create_job(spec, lock=True, prompts=prompts)
        assert owner is not None
        if before_start is not None:
            try:
                await before_start(self.handle(job.id))
            except BaseException:
                await asyncio.shield(journal.release(owner))  # even on a second Ctrl-C
                raise
        return self._launch(job, owner)

    async def _checked(self, spec: JobSpec) -> tuple[JobSpec, dict[str, str]]:
        """The spec checked, with its reference URLs fetched into the workspace (kept by
        content hash; written only once every check passed), and the prompts to send."""
        prompts = await asyncio.to_thread(check_spec, spec, self.env, self.providers)
        await check_webhook(spec.config, self.env)
        fetched = await fetch_urls(spec, self.env)
        if fetched:
            await self.ready()
            folder = self.workspace.references_dir
            spec = await asyncio.to_thread(keep_fetched, spec, fetched, folder)
        return spec, prompts

    async def in_cache(self, job_id: str) -> frozenset[str]:
        """The job's items whose request an earlier job paid for: a run takes their images
        from the result cache and pays nothing (see `cache_ahead`)."""
        handle = self.handle(job_id)
        job = await handle.status()
        provider = provider_for(job.config, self.env, self.providers)  # its model, as a run's
        model = getattr(provider, "model", None) or job.config.model
        await provider.aclose()
        return await in_cache(job, await handle.items(), self.cache, model)

    async def start(self, job_id: str) -> JobHandle:
        """Run a recorded (or interrupted) job here; returns at once while it runs.

        A finished job is a `ConfigError` (retry its failed items instead); a job another live
        process runs is a `KeyConflictError`.
        """
        job = await (await self.ready()).job(job_id)
        if job.status in JOB_TERMINAL:
            raise ConfigError(
                f"job {job.id} has finished ({job.status}); nothing to start: retry its "
                "failed or cancelled items to run them again"
            )
        if self.running_here(job.id):
            return self.handle(job.id)
        await self.preflight(job)
        owner = await (await self.ready()).acquire(job.key, job.id)
        return self._launch(job, owner)

    async def preflight(self, job: JobRecord) -> None:
        """Raise `ConfigError` if the job's provider cannot be used here (a missing key, a bad
        option, a webhook secret not set), before anything is written for it."""
        provider = provider_for(job.config, self.env, self.providers)
        await provider.aclose()
        await check_webhook(job.config, self.env)

    def _launch(self, job: JobRecord, owner: LockOwner) -> JobHandle:
        task = asyncio.create_task(run_job(self, job, owner), name=f"job {job.id}")
        self._tasks[job.id] = task
        return self.handle(job.id)


def _warn_if_shared(workspace: Workspace) -> None:
    """Warn once per opening when the workspace is on a network file system (see `mounts`)."""
    kind = network_file_system(workspace.root)
    if kind is not None:
        LOGGER.warning("%s", shared_warning(workspace.root, kind))

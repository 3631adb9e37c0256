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
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
from collections.abc import Coroutine, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .attempts import Quota
from .bus import EventBus
from .cache import ResultCache
from .clock import Clock, SystemClock
from .errors import ConfigError
from .handle import JobHandle
from .journal import Journal
from .lanes import Lane, Lanes
from .locks import LockOwner, keep_alive, pid_alive
from .pipeline import PipelineSettings, Runner
from .preflight import check_spec, check_webhook, provider_for
from .providers.base import ProviderFactory
from .quota import QUOTA_FILE, SharedQuota
from .records import JobRecord
from .reference_urls import fetch_urls, keep_fetched
from .spec import JobConfig, JobSpec
from .stages import PostStage
from .states import JOB_TERMINAL
from .storage import Workspace, make_folders, remove_stale_tmp
from .webhooks.policy import DeliverySettings

if TYPE_CHECKING:
    from .webhooks.sender import WebhookSender

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
        self.workspace = workspace
        self.providers = dict(providers or {})
        self.env = dict(env or {})
        self.clock = clock or SystemClock()
        self.settings = settings or PipelineSettings()
        self.stale_after_s = stale_after_s
        self.heartbeat_s = heartbeat_s or max(1.0, min(30.0, stale_after_s / 10))
        self.bus = EventBus()
        self.lanes = Lanes()
        self.post = post or PostStage()
        self.cache = ResultCache(workspace.cache_dir)
        """Images of earlier identical requests (opened on first use)."""
        self.webhooks = webhooks or DeliverySettings()
        """How jobs' webhook messages are tried and queued."""
        self._shared_quota: SharedQuota | None = None
        self._tasks: dict[str, asyncio.Task[JobRecord]] = {}
        self._opening = asyncio.Lock()

    @functools.cached_property
    def journal(self) -> Journal:
        """The workspace's journal, opened (and the workspace made) on first use. On the event
        loop, `await ready()` opens it off the loop instead."""
        self.workspace.prepare()
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
        if self._shared_quota is not None:
            await asyncio.to_thread(self._shared_quota.close)
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

    async def submit(self, spec: JobSpec) -> JobHandle:
        """Check the spec, record the job holding its key's lock, and start running it here."""
        spec, prompts = await self._checked(spec)
        job, owner = await (await self.ready()).create_job(spec, lock=True, prompts=prompts)
        assert owner is not None
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
        task = asyncio.create_task(self._run(job, owner), name=f"job {job.id}")
        self._tasks[job.id] = task
        return self.handle(job.id)

    async def _run(self, job: JobRecord, owner: LockOwner) -> JobRecord:
        """Run the job with its webhook's sender beside it; the sender gets `drain_s` to send
        what is left after the lock is released, and none when the run is interrupted."""
        try:
            sender = self._webhook_sender(job)
            if sender is not None:
                await sender.start()
        except BaseException:
            await _quietly(self.journal.release(owner))
            raise
        try:
            record = await self._run_locked(job, owner)
        except BaseException:
            if sender is not None:
                await _quietly(sender.stop(drain=False))
            raise
        if sender is not None:
            await _quietly(sender.stop(drain=True))
        return record

    def _webhook_sender(self, job: JobRecord) -> WebhookSender | None:
        if job.config.webhook is None:
            return None
        from .webhooks.sender import sender_for  # loads aiohttp: only for jobs with a webhook

        return sender_for(
            self.journal,
            self.bus,
            job,
            env=self.env,
            images_root=self.workspace.root,
            clock=self.clock,
            settings=self.webhooks,
        )

    async def _run_locked(self, job: JobRecord, owner: LockOwner) -> JobRecord:
        try:
            # a killed run's half-written files go; the lock says no live writer of ours is left
            folder = self.workspace.job_dir(job.id)
            await asyncio.to_thread(self._job_folders, folder)  # before anything is paid
            await asyncio.to_thread(remove_stale_tmp, folder, pid_alive)
            provider = provider_for(job.config, self.env, self.providers)
            try:
                with self._lane(job.config) as lane:
                    runner = Runner(
                        self.journal,
                        self.journal.run(job.id, owner),
                        self.bus,
                        workspace=self.workspace,
                        provider=provider,
                        job=job,
                        lane=lane,
                        post=self.post,
                        clock=self.clock,
                        settings=self.settings,
                        cache=self.cache,
                        quota=self._quota(job.config),
                    )
                    guard = keep_alive(self.journal, owner, self.heartbeat_s, self.clock)
                    return await _run_guarded(runner.run(), guard)
            finally:
                await provider.aclose()
        finally:
            await _quietly(self.journal.release(owner))

    def _job_folders(self, folder: Path) -> None:
        """Make the job's folders, or raise `ConfigError` if a symbolic link was planted on
        the way (it would take the images outside the workspace)."""
        try:
            for sub in ("raw", "thumbs"):
                make_folders(self.workspace.root, folder / sub)
        except PermissionError as error:
            raise ConfigError(str(error)) from None

    def _quota(self, config: JobConfig) -> Quota | None:
        """The job's share of the workspace's start rate, if it has a rate to keep."""
        rate = config.limits.rate_per_minute
        if rate is None or not self.settings.shared_quota:
            return None
        if self._shared_quota is None:
            self._shared_quota = SharedQuota(self.workspace.root / QUOTA_FILE)
        fingerprint = _key_fingerprint(config.provider, self.env)
        key = f"{config.provider}|{config.model or ''}|{fingerprint}"
        return Quota(self._shared_quota, key, rate)

    @contextlib.contextmanager
    def _lane(self, config: JobConfig) -> Iterator[Lane]:
        """The lane of the job's provider and key while the job runs."""
        key = (config.provider, config.model, _key_fingerprint(config.provider, self.env))
        limits = config.limits
        concurrency, rate, adaptive = limits.most_in_flight, limits.rate_per_minute, limits.adaptive
        lane = self.lanes.get(key, concurrency=concurrency, rate_per_minute=rate, adaptive=adaptive)
        try:
            yield lane
        finally:
            self.lanes.release(
                key, concurrency=concurrency, rate_per_minute=rate, adaptive=adaptive
            )


def _key_fingerprint(provider: str, env: Mapping[str, str]) -> str:
    """Tells keys apart without keeping one: a short hash of the provider's key variables."""
    names = sorted(name for name in env if name.endswith(("_API_KEY", "_KEY")))
    secret = "|".join(env[name] for name in names)
    return hashlib.sha256(f"{provider}|{secret}".encode()).hexdigest()[:12]


async def _quietly(work: Coroutine[Any, Any, Any]) -> None:
    """Finish `work` (give back the lock, keep undelivered webhooks) even while being
    cancelled; the cancellation is raised once it is done."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


async def _run_guarded(
    work: Coroutine[Any, Any, JobRecord], guard: Coroutine[Any, Any, None]
) -> JobRecord:
    """Run `work` while `guard` runs beside it; if the guard fails, stop the work and raise."""
    main = asyncio.create_task(work)
    side = asyncio.create_task(guard)
    try:
        await asyncio.wait({main, side}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        for task in (main, side):
            task.cancel()
        await asyncio.wait({main, side})
        raise
    if main.done():
        side.cancel()
        await asyncio.wait({side})
        return main.result()
    main.cancel()
    await asyncio.wait({main})
    side.result()  # raises why the guard stopped (the lock was lost)
    raise RuntimeError("the lock keeper stopped without an error")

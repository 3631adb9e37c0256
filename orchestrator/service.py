"""The orchestrator: create, run, cancel and retry jobs of one workspace.

`create` validates everything that can be checked before a paid call (spec, provider options,
keys, sizes) and records the job; `run` takes the job's key lock, builds the provider on the
running loop and hands the job to a `pipeline.Runner`, with a heartbeat that keeps the lock.
`cancel` and `retry` are requests through the journal, so they work from another process too.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from .clock import Clock, SystemClock
from .errors import BadResponseError, ConfigError, KeyConflictError
from .events import EventBus
from .imaging import inspect_image
from .journal import ItemChange, Journal
from .locks import KeyLocks, keep_alive
from .pipeline import PipelineSettings, Runner
from .providers import registry
from .providers.base import GenerateRequest, Provider, ProviderConfig, ProviderFactory
from .records import EventType, JobRecord
from .spec import JobConfig, JobSpec
from .states import JOB_TERMINAL, ItemStatus
from .storage import Workspace

__all__ = ["Orchestrator", "check_spec", "provider_for"]

_RETRYABLE = frozenset({ItemStatus.FAILED, ItemStatus.CANCELLED})


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
        heartbeat_s: float = 30.0,
        providers: Mapping[str, ProviderFactory] | None = None,
    ) -> None:
        self.workspace = workspace
        self.providers = dict(providers or {})
        self.env = dict(env or {})
        self.clock = clock or SystemClock()
        self.settings = settings or PipelineSettings()
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.bus = EventBus()

    @functools.cached_property
    def journal(self) -> Journal:
        """The workspace's journal, opened (and the workspace made) on first use."""
        self.workspace.prepare()
        return Journal(self.workspace.journal_dir, bus=self.bus)

    @functools.cached_property
    def locks(self) -> KeyLocks:
        return KeyLocks(self.journal.index, stale_after_s=self.stale_after_s, clock=self.clock)

    def close(self) -> None:
        if "journal" in self.__dict__:
            self.journal.close()

    # --------------------------------------------------------------- create

    async def create(self, spec: JobSpec) -> JobRecord:
        """Check the spec and record the job as pending; the id is returned at once.

        Nothing is written, not even the workspace folder, if the spec is refused.
        """
        await asyncio.to_thread(check_spec, spec, self.env, self.providers)
        return self.journal.create_job(spec)  # refuses a key whose job is still active

    # ------------------------------------------------------------------ run

    async def run(self, job_id: str) -> JobRecord:
        """Run (or resume) the job to its end on this loop; returns its final record."""
        job = self.journal.job(job_id)
        if job.status in JOB_TERMINAL:
            return job
        # Pre-flight (key, model, options) before the lock or anything else is written.
        provider = provider_for(job.config, self.env, self.providers)
        try:
            owner = self.locks.acquire(job.key, job.id)
            try:
                runner = Runner(
                    self.journal,
                    self.workspace,
                    provider,
                    job,
                    clock=self.clock,
                    settings=self.settings,
                )
                guard = keep_alive(self.locks, owner, self.heartbeat_s, self.clock)
                return await _run_guarded(runner.run(), guard)
            finally:
                self.locks.release(owner)
        finally:
            await provider.aclose()

    async def preflight(self, job_id: str) -> None:
        """Raise `ConfigError` if the job's provider cannot be used here (a missing key, a bad
        option or model), before a command writes anything for it."""
        job = self.journal.job(job_id)
        provider = provider_for(job.config, self.env, self.providers)
        await provider.aclose()

    # ----------------------------------------------------- cancel and retry

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel the job's unfinished items. A live runner stops its running ones itself."""
        job = self.journal.job(job_id)
        if job.status in JOB_TERMINAL:
            return job
        runner_live = self.is_running(job)
        stoppable = (
            {ItemStatus.PENDING} if runner_live else {ItemStatus.PENDING, ItemStatus.RUNNING}
        )
        changes = [
            ItemChange(
                item_id,
                EventType.ITEM_CANCELLED,
                ItemStatus.CANCELLED,
                {"retry_at": None},
                only_from=frozenset(stoppable),
            )
            for item_id in job.item_ids
        ]
        return self.journal.update_items(
            job_id,
            changes,
            job_changes={"cancel_requested": runner_live, "cancelled": True},
            job_event=EventType.JOB_CANCEL_REQUESTED,
        )

    def retry(self, job_id: str, item_ids: list[str] | None = None) -> list[str]:
        """Put failed and cancelled items (all, or those named) back to pending.

        Each gets a fresh set of `max_attempts`; a raw image already paid for is kept, so an
        item that failed in post-processing is only post-processed again.
        """
        job = self.journal.job(job_id)
        if self.is_running(job):
            holder = self.locks.holder(job.key)
            pid = holder.pid if holder else "?"
            raise KeyConflictError(
                f"job {job.id} is running in another process (pid {pid}); retry it once that "
                f"run ends, or `imagebatch cancel {job.id}` first",
                key=job.key,
                job_id=job.id,
            )
        items = {item.id: item for item in self.journal.items(job_id)}
        for item_id in item_ids or []:
            if item_id not in items:
                raise ConfigError(f"--items: job {job_id} has no item {item_id!r}")
            if items[item_id].status not in _RETRYABLE:
                raise ConfigError(
                    f"--items: item {item_id!r} is {items[item_id].status}; "
                    "only failed or cancelled items can be retried"
                )
        targets = item_ids or [i for i, item in items.items() if item.status in _RETRYABLE]
        changes = [
            ItemChange(
                item_id,
                EventType.ITEM_RESET,
                ItemStatus.PENDING,
                {
                    "error": None,
                    "retry_at": None,
                    "attempts_before_retry": items[item_id].attempt_count,
                },
                {"reason": "retry"},
                only_from=_RETRYABLE,
            )
            for item_id in targets
        ]
        if changes:
            self.journal.update_items(job_id, changes, job_changes={"cancelled": False})
        return targets

    def is_running(self, job: JobRecord) -> bool:
        """A live process holds this job's key lock."""
        holder = self.locks.holder(job.key)
        return holder is not None and holder.job_id == job.id and self.locks.is_live(holder)

    def unfinished(self) -> list[JobRecord]:
        """Jobs that have not reached a terminal status, oldest first."""
        return [job for job in self.journal.jobs() if job.status not in JOB_TERMINAL]


def provider_for(
    config: JobConfig,
    env: Mapping[str, str],
    providers: Mapping[str, ProviderFactory] | None = None,
) -> Provider:
    """Build the job's provider (clients are made lazily, on first use).

    `providers` adds factories by name in this process, ahead of the registry.
    """
    provider_config = ProviderConfig(model=config.model, options=config.provider_options, env=env)
    if providers and config.provider in providers:
        return providers[config.provider](provider_config)
    return registry.create(config.provider, provider_config)


def check_spec(
    spec: JobSpec,
    env: Mapping[str, str],
    providers: Mapping[str, ProviderFactory] | None = None,
) -> None:
    """Raise `ConfigError` for anything that would fail every attempt of some item.

    Writes nothing: the CLI calls it before it opens the workspace. Reads reference images, so
    call it from a thread when a loop is running.
    """
    provider = provider_for(spec.config, env, providers)
    _check_model(spec.config, provider)
    for index, item in enumerate(spec.items):
        if item.references and not provider.capabilities.supports_references:
            raise ConfigError(
                f"items[{index}].references: provider {spec.provider!r} does not take "
                "reference images; remove them or choose another provider"
            )
        for ref in item.references:
            _check_reference(Path(ref), f"items[{index}].references")
        params = spec.params_for(item).model_dump()
        request = GenerateRequest(job_id="check", item_id=item.id, prompt=item.prompt, **params)
        try:
            provider.check(request)
        except ConfigError as error:
            raise ConfigError(f"items[{index}] ({item.id}): {error}") from None


def _check_model(config: JobConfig, provider: Provider) -> None:
    known = provider.capabilities.models
    if config.model is None or config.allow_unknown_model:
        return
    if not provider.capabilities.knows_model(config.model):
        raise ConfigError(
            f"model: {config.provider} has no model {config.model!r}; known: {', '.join(known)} "
            '(for a model not listed yet, set "allow_unknown_model": true or '
            "pass --allow-unknown-model)"
        )


def _check_reference(path: Path, where: str) -> None:
    try:
        inspect_image(path.read_bytes())
    except (OSError, BadResponseError) as error:
        raise ConfigError(f"{where}: {path.name} is not a usable image ({error})") from None


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
    side.result()  # raises why the guard stopped (the lock was taken over)
    raise RuntimeError("the lock keeper stopped without an error")

"""The pipeline: runs one job's unfinished items on the current event loop.

Per item: wait out a recorded backoff -> wait out the provider's cool-down -> take a concurrency
slot -> take a rate slot -> one attempt under `asyncio.timeout` -> release the slot -> validate
and write the raw image -> record it -> post-process off the loop -> record completion. A
failed attempt is classified; a retryable one waits (outside the slot) and goes again.

The pipeline decides *when* things run; the journal records *what* happened; the provider does
the call. Cancellation is recorded, then re-raised: an interrupt (Ctrl-C) leaves items pending
and the job resumable, a `cancel` request (through the journal) leaves them cancelled.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .clock import Clock, SystemClock
from .errors import (
    AttemptTimeoutError,
    AuthError,
    BadResponseError,
    JournalError,
    ProviderError,
    RateLimitedError,
)
from .imaging import inspect_image, postprocess
from .journal import ItemChange, Journal, attempt_ended, attempt_started, error_info
from .limits import RateGate
from .providers.base import GeneratedImage, GenerateRequest, Provider, Reference
from .records import AttemptRecord, ErrorInfo, EventType, ItemRecord, JobRecord
from .retry import RetryPolicy, next_delay
from .states import JOB_TERMINAL, ItemStatus
from .storage import Workspace, atomic_write, sha256_hex

__all__ = ["PipelineSettings", "Runner", "build_request"]

POST_WORKERS = max(1, min(4, (os.cpu_count() or 1)))
"""Threads that post-process images (Pillow releases the GIL while it encodes)."""
_PENDING = frozenset({ItemStatus.PENDING})
_RUNNING = frozenset({ItemStatus.RUNNING})
_STOPPABLE = frozenset({ItemStatus.PENDING, ItemStatus.RUNNING})


@dataclass(frozen=True)
class PipelineSettings:
    """How the runner behaves beyond the job's own limits."""

    retry_base_s: float = 1.0
    """First backoff ceiling; doubles per attempt (full jitter)."""
    retry_cap_s: float = 60.0
    cancel_poll_s: float = 0.5
    """How often the journal is read for a cancel request from another process."""
    seed: int | None = None
    """Seed of the backoff jitter; none draws one."""


class Runner:
    """Runs one job's unfinished items to the end, or until cancelled."""

    def __init__(
        self,
        journal: Journal,
        workspace: Workspace,
        provider: Provider,
        job: JobRecord,
        *,
        clock: Clock | None = None,
        settings: PipelineSettings | None = None,
    ) -> None:
        limits = job.config.limits
        self.journal = journal
        self.workspace = workspace
        self.provider = provider
        self.job_id = job.id
        self.config = job.config
        self.clock = clock or SystemClock()
        self.settings = settings = settings or PipelineSettings()
        self.policy = RetryPolicy(
            max_attempts=limits.max_attempts,
            base_s=settings.retry_base_s,
            cap_s=settings.retry_cap_s,
        )
        self.slots = asyncio.Semaphore(limits.concurrency)
        self.gate = RateGate(limits.rate_per_minute, self.clock)
        self.rng = random.Random(settings.seed)
        # Post-processing has workers of its own, so recording a paid image never queues
        # behind it in the default thread pool.
        self.post_workers = ThreadPoolExecutor(POST_WORKERS, thread_name_prefix="postprocess")
        self.auth_error: AuthError | None = None
        self.cancelling = False
        self.started = self.clock.monotonic()

    # ------------------------------------------------------------------ job

    async def run(self) -> JobRecord:
        """Run every unfinished item; return the job as finally recorded."""
        self.journal.recover(self.job_id)
        self.journal.update_job(self.job_id, EventType.JOB_STARTED, active=True)
        self.started = self.clock.monotonic()
        try:
            return await self._run_items()
        finally:
            self.post_workers.shutdown(wait=False, cancel_futures=True)

    async def _run_items(self) -> JobRecord:
        todo = [item for item in self.journal.items(self.job_id) if item.status in _STOPPABLE]
        tasks = [asyncio.create_task(self._run_item(item.id), name=item.id) for item in todo]
        watcher = asyncio.create_task(self._watch_cancel(tasks))
        try:
            if tasks:
                await asyncio.wait(tasks)
        except asyncio.CancelledError:
            await _cancel_all(tasks)
            self._finish_job(interrupted=True)
            raise
        finally:
            await _cancel_all([watcher])
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                self._finish_job(interrupted=True)
                raise task.exception()  # type: ignore[misc]
        return self._finish_job(interrupted=False)

    def _finish_job(self, *, interrupted: bool) -> JobRecord:
        job = self.journal.job(self.job_id)
        finished = job.status in JOB_TERMINAL or not interrupted
        event = EventType.JOB_FINISHED if finished else EventType.JOB_INTERRUPTED
        counts = {str(status): n for status, n in job.counts.items()}
        run_s = job.run_s + max(0.0, self.clock.monotonic() - self.started)
        data = {"counts": counts, "run_s": round(run_s, 3)}
        return self.journal.update_job(self.job_id, event, data, active=False, run_s=run_s)

    async def _watch_cancel(self, tasks: list[asyncio.Task[None]]) -> None:
        while True:
            await asyncio.sleep(self.settings.cancel_poll_s)
            if self.journal.job(self.job_id).cancel_requested:
                self.cancelling = True
                for task in tasks:
                    task.cancel()
                return

    # ----------------------------------------------------------------- item

    async def _run_item(self, item_id: str) -> None:
        try:
            while await self._step(self.journal.item(self.job_id, item_id)):
                pass
        except asyncio.CancelledError:
            self._record_stop(item_id)
            raise
        except JournalError:
            raise
        except Exception as error:  # a bug or a disk error fails this item, not the batch
            self._fail(self.journal.item(self.job_id, item_id), error_info(error))

    async def _step(self, item: ItemRecord) -> bool:
        """Take the item one step further; False when there is nothing left to do for it."""
        if item.status != ItemStatus.PENDING:
            return False
        if item.raw_path and await self._raw_intact(item):
            await self._postprocess(item)
            return False
        if self.auth_error is not None:
            message = f"not attempted: the provider refused the key earlier ({self.auth_error})"
            self._fail(item, ErrorInfo(kind="auth", message=message))
            return False
        if item.retry_at is not None:
            await self.clock.sleep(max(0.0, item.retry_at - self.clock.time()))
        return await self._attempt(item)

    async def _attempt(self, item: ItemRecord) -> bool:
        while (remaining := self.gate.cooldown_remaining()) > 0:
            await self.clock.sleep(remaining)  # a provider cool-down holds no slot
        request = await build_request(item)  # a reference that is gone fails before any call
        async with self.slots:
            await self.gate.wait_turn()
            item = self._start(item)
            if item.status != ItemStatus.RUNNING:
                return False  # cancelled from outside meanwhile
            request = request.model_copy(update={"attempt": item.attempt_count})
            try:
                async with asyncio.timeout(self.config.limits.timeout_s):
                    image = await self.provider.generate(request)
            except TimeoutError:
                timeout = self.config.limits.timeout_s
                return self._attempt_failed(item, AttemptTimeoutError(f"no answer in {timeout:g}s"))
            except ProviderError as error:
                return self._attempt_failed(item, error)
            # Paid for: validated, written and recorded before this slot takes a new paid
            # request, even if a cancel arrives meanwhile, so no resume pays for it again.
            try:
                item = await _finish_before_cancel(self._store_raw(item, image))
            except BadResponseError as error:
                return self._attempt_failed(item, error)
        await self._postprocess(item)
        return False

    def _start(self, item: ItemRecord) -> ItemRecord:
        attempts = attempt_started(item, self.clock.time())
        change = ItemChange(
            item.id,
            EventType.ITEM_STARTED,
            ItemStatus.RUNNING,
            {"attempts": attempts, "retry_at": None},
            {"attempt": len(attempts), "retry": attempts[-1].retry},
            only_from=_PENDING,
        )
        self.journal.update_items(self.job_id, [change])
        return self.journal.item(self.job_id, item.id)

    def _attempt_failed(self, item: ItemRecord, error: ProviderError) -> bool:
        info = error_info(error)
        if isinstance(error, AuthError):
            self.auth_error = error
        made = _attempts_made(item)
        delay = next_delay(made, error, self.policy, self.rng)
        if isinstance(error, RateLimitedError):
            wait = error.retry_after if error.retry_after is not None else delay or 0.0
            self.gate.cool_down(min(wait, self.policy.max_retry_after_s))
        now = self.clock.time()
        attempts = attempt_ended(item, now, "error", info, retry_after=error.retry_after)
        if delay is None:
            self._fail(item, info, attempts)
            return False
        data = {
            "kind": info.kind,
            "message": info.message,
            "delay_s": round(delay, 3),
            "retry_after": error.retry_after,
        }
        change = ItemChange(
            item.id,
            EventType.ITEM_RETRYING,
            ItemStatus.PENDING,
            {"attempts": attempts, "error": info, "retry_at": now + delay},
            data,
            only_from=_RUNNING,
        )
        self.journal.update_items(self.job_id, [change])
        return True

    def _fail(
        self, item: ItemRecord, info: ErrorInfo, attempts: tuple[AttemptRecord, ...] | None = None
    ) -> None:
        if attempts is None:
            attempts = attempt_ended(item, self.clock.time(), "error", info)
        changes = {"error": info, "retry_at": None, "attempts": attempts}
        change = ItemChange(
            item.id,
            EventType.ITEM_FAILED,
            ItemStatus.FAILED,
            changes,
            {"kind": info.kind, "message": info.message},
            only_from=_STOPPABLE,
        )
        self.journal.update_items(self.job_id, [change])

    def _record_stop(self, item_id: str) -> None:
        item = self.journal.item(self.job_id, item_id)
        attempts = attempt_ended(item, self.clock.time(), "cancelled")
        if self.cancelling:
            change = ItemChange(
                item_id,
                EventType.ITEM_CANCELLED,
                ItemStatus.CANCELLED,
                {"attempts": attempts, "retry_at": None},
                only_from=_STOPPABLE,
            )
        else:
            change = ItemChange(
                item_id,
                EventType.ITEM_RESET,
                ItemStatus.PENDING,
                {"attempts": attempt_ended(item, self.clock.time(), "interrupted")},
                {"reason": "interrupted"},
                only_from=_RUNNING,
            )
        self.journal.update_items(self.job_id, [change])

    # -------------------------------------------------------------- images

    async def _store_raw(self, item: ItemRecord, image: GeneratedImage) -> ItemRecord:
        info = await asyncio.to_thread(inspect_image, image.data)
        path = self.workspace.raw_path(self.job_id, item.id, info.ext)
        digest = sha256_hex(image.data)
        await asyncio.to_thread(atomic_write, path, image.data)
        attempts = attempt_ended(item, self.clock.time(), "ok", cost_usd=image.cost_usd)
        changes = {
            "attempts": attempts,
            "raw_path": self.workspace.relative(path),
            "raw_sha256": digest,
            "mime_type": info.mime_type,
            "model": image.model,
            "usage": image.usage,
            "cost_usd": image.cost_usd,
            "revised_prompt": image.revised_prompt,
            "error": None,
        }
        data = {
            "bytes": len(image.data),
            "width": info.width,
            "height": info.height,
            "cost_usd": image.cost_usd,
        }
        self.journal.update_items(
            self.job_id, [ItemChange(item.id, EventType.ITEM_GENERATED, None, changes, data)]
        )
        return self.journal.item(self.job_id, item.id)

    async def _raw_intact(self, item: ItemRecord) -> bool:
        assert item.raw_path is not None
        path = self.workspace.absolute(item.raw_path)
        return await asyncio.to_thread(_file_matches, path, item.raw_sha256)

    async def _postprocess(self, item: ItemRecord) -> None:
        if item.status == ItemStatus.PENDING:
            item = self._start_postprocess(item)
            if item.status != ItemStatus.RUNNING:
                return
        assert item.raw_path is not None
        raw = self.workspace.absolute(item.raw_path)
        fmt = self.config.output.format
        image_path = self.workspace.image_path(self.job_id, item.id, fmt)
        thumb_path = self.workspace.thumb_path(self.job_id, item.id)
        try:
            done = await asyncio.get_running_loop().run_in_executor(
                self.post_workers, postprocess, raw, image_path, thumb_path, self.config.output
            )
        except (BadResponseError, OSError, ValueError) as error:
            info = ErrorInfo(kind="postprocess", message=f"post-processing failed: {error}")
            self._fail(item, info)
            return
        changes = {
            "image_path": self.workspace.relative(done.image_path),
            "thumb_path": self.workspace.relative(done.thumb_path),
            "width": done.width,
            "height": done.height,
            "error": None,
        }
        data = {"image_path": changes["image_path"]}
        self.journal.update_items(
            self.job_id,
            [ItemChange(item.id, EventType.ITEM_COMPLETED, ItemStatus.COMPLETED, changes, data)],
        )

    def _start_postprocess(self, item: ItemRecord) -> ItemRecord:
        change = ItemChange(
            item.id,
            EventType.ITEM_STARTED,
            ItemStatus.RUNNING,
            {"retry_at": None},
            {"postprocess_only": True},
            only_from=_PENDING,
        )
        self.journal.update_items(self.job_id, [change])
        return self.journal.item(self.job_id, item.id)


async def build_request(item: ItemRecord) -> GenerateRequest:
    """The provider request for the item's next attempt (reference files read off the loop)."""
    references = tuple(
        [
            await asyncio.to_thread(_read_reference, Path(p), n)
            for n, p in enumerate(item.references)
        ]
    )
    return GenerateRequest(
        job_id=item.job_id,
        item_id=item.id,
        prompt=item.prompt,
        attempt=item.attempt_count,
        references=references,
        **item.params.model_dump(),
    )


def _attempts_made(item: ItemRecord) -> int:
    """Attempts that count against `max_attempts`: since the last explicit retry, and not those
    cut short by an interrupt or a cancel (stopping a run must not use up an item's tries)."""
    since_retry = item.attempts[item.attempts_before_retry :]
    return sum(1 for attempt in since_retry if attempt.outcome not in ("interrupted", "cancelled"))


def _read_reference(path: Path, number: int) -> Reference:
    data = path.read_bytes()
    info = inspect_image(data)
    return Reference(data=data, mime_type=info.mime_type, name=f"ref-{number}.{info.ext}")


def _file_matches(path: Path, digest: str | None) -> bool:
    try:
        return digest is not None and sha256_hex(path.read_bytes()) == digest
    except OSError:
        return False


async def _finish_before_cancel(work: Coroutine[Any, Any, ItemRecord]) -> ItemRecord:
    """Await `work` to its end even if this task is cancelled meanwhile, then re-raise that."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)

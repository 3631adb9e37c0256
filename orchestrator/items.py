"""One item's way through a run: attempts, waits between them, storing and post-processing.

`ItemWork.run(item_id)` takes an item from pending to an end (completed or failed), or back to
pending when the run stops. Every state change is a journal verb of the run, fenced by its
lease. A paid image is always recorded, even when a cancel lands as it arrives.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .attempts import Blocked, Quota, attempts_made, build_request, rate_limited_made
from .cache import ResultCache, request_key
from .clock import Clock
from .errors import (
    AttemptTimeoutError,
    AuthError,
    BadResponseError,
    JournalError,
    ProviderError,
    RateLimitedError,
    StorageError,
    UnavailableError,
)
from .estimate import listed_price
from .journal import WAIT_FOR_BUDGET, Run, error_info
from .keeping import ImageKeeping, finish_before_cancel
from .lanes import Lane, Turn
from .pauses import PauseWatch, attempt_timeout
from .providers.base import GenerateRequest, Provider, until_ready
from .records import ErrorInfo, ItemRecord
from .retry import RetryPolicy, next_delay
from .spec import JobConfig
from .stages import PostStage
from .states import ItemStatus
from .storage import Workspace

__all__ = ["ItemWork"]

BUDGET_POLL_S = 0.5
"""How soon an item the budget held back looks again (an attempt in flight may give back its
reservation meanwhile)."""


@dataclass
class ItemWork(ImageKeeping):
    """What every item of one run shares: its verbs, provider, lane, stages and retry policy."""

    verbs: Run
    workspace: Workspace
    provider: Provider
    config: JobConfig
    lane: Lane
    post: PostStage
    clock: Clock
    pauses: PauseWatch
    policy: RetryPolicy
    rng: random.Random
    cache: ResultCache | None = None
    """The workspace's result cache (used unless the job's `cache` is off)."""
    quota: Quota | None = None
    """The start rate shared with the other processes on the workspace, if the job has one."""
    auth_error: AuthError | None = field(default=None)
    """Once the provider refuses the key, the run's other items fail without a call."""
    in_call: set[str] = field(default_factory=set)
    """Items whose attempt is recorded as started and whose answer is not kept yet: what a
    run that winds down waits for (a request under way may be billed)."""

    async def run(self, item_id: str, *, due: bool = False) -> float | Blocked | None:
        """Take the item as far as it goes now: None when it has reached an end (or needs
        nothing), `Blocked` while items it references are unfinished, else the seconds to
        wait before its next attempt (a backoff: the caller waits without holding anything,
        then calls again with `due`). A failure is data, never an exception here."""
        try:
            item = await self.verbs.item(item_id)
            if item.status != ItemStatus.PENDING:
                return None
            if item.retry_at is not None and not item.raw_path and not due:
                wait = item.retry_at - self.clock.time()
                if wait > 0:
                    return wait
            after = await self._step(item)
            if isinstance(after, float | Blocked):
                return after  # waiting for the budget or a reference: no attempt was made
            if after is None or after.status != ItemStatus.PENDING:
                return None
            return max(0.0, (after.retry_at or 0.0) - self.clock.time())
        except (JournalError, StorageError):  # a lost lease, a refused transition or a
            raise  # workspace that cannot be written stops the run
        except Exception as error:  # a bug or an error of one file fails this item, not the batch
            await self.verbs.fail(item_id, error_info(error))
            return None

    async def stopped(self, item_id: str, *, cancelled: bool) -> None:
        """Record that this run stopped the item: cancelled, or back to pending (resumable)."""
        await self.verbs.stop(item_id, cancelled=cancelled)

    async def _step(self, item: ItemRecord) -> ItemRecord | float | Blocked | None:
        """One step further; the item to go on with, None when there is nothing left, what it
        waits for, or the seconds to wait before trying again (the budget is held by attempts
        in flight)."""
        intact = bool(item.raw_path) and await asyncio.to_thread(self._raw_intact, item)
        if intact:
            started = await self.verbs.start_postprocess(item.id)
            if started is not None:
                await self._postprocess(started)
            return None
        if self.auth_error is not None:
            await self._refused_earlier(item.id)
            return None
        references = await self._references(item)
        if not isinstance(references, list):
            return references
        return await self._attempt(item, references)

    async def _references(self, item: ItemRecord) -> list[Path] | Blocked | None:
        """The images of the items it references, once all are completed; `Blocked` while
        some are not; None when one failed or was cancelled (the item fails unattempted)."""
        paths, unfinished = [], []
        for dep_id in item.depends_on:
            dep = await self.verbs.item(dep_id)
            if dep.status in (ItemStatus.FAILED, ItemStatus.CANCELLED):
                said = f" ({dep.error.message})" if dep.error is not None else ""
                message = f"not attempted: the item it references, {dep.id}, {dep.status}{said}"
                await self.verbs.fail(item.id, ErrorInfo(kind="reference", message=message))
                return None
            if dep.status != ItemStatus.COMPLETED or dep.raw_path is None:
                unfinished.append(dep.id)
            else:
                paths.append(self.workspace.absolute(dep.raw_path))
        return Blocked(tuple(unfinished)) if unfinished else paths

    async def _attempt(self, item: ItemRecord, from_items: list[Path]) -> ItemRecord | float | None:
        # a reference that is gone fails before any call
        request = await build_request(item, from_items)
        key = self._cache_key(request)
        if key is not None and await self._answered_from_cache(item, key):
            return None
        # Turns are taken once the provider can send (its SDK loaded): the turns paced while
        # it loads would all go out together when it is, a burst the provider answers with 429.
        await until_ready(self.provider)
        try:
            return await self._in_turn(item, request, key)
        finally:
            self.in_call.discard(item.id)

    async def _in_turn(
        self, item: ItemRecord, request: GenerateRequest, key: str | None
    ) -> ItemRecord | float | None:
        """Take a turn on the lane, start the attempt, call; keep the image it pays for."""
        async with self.lane.turn() as turn:
            if self.auth_error is not None:  # refused while this item waited for its turn
                await self._refused_earlier(item.id)
                return None
            started = await self._start(item.id, request)
            if started == WAIT_FOR_BUDGET:
                return BUDGET_POLL_S
            if started is None:
                return None  # cancelled, no longer pending, or failed for lack of budget
            self.in_call.add(item.id)
            request = request.model_copy(update={"attempt": started.attempt_count})
            try:
                async with attempt_timeout(self.config.limits.timeout_s, self.pauses):
                    image = await self.provider.generate(request)
            except TimeoutError:
                timeout = self.config.limits.timeout_s
                error = AttemptTimeoutError(f"no answer in {timeout:g}s")
                return await self._attempt_failed(started, error, turn)
            except ProviderError as error:
                return await self._attempt_failed(started, error, turn)
            turn.succeeded()
            # Paid for: stored, and its record queued, before this turn ends, even if a cancel
            # lands meanwhile. The next paid request of the lane waits for its own attempt's
            # start, which commits after this record: so the record is made first, and the
            # turn does not wait for it.
            try:
                recording, stored = await finish_before_cancel(self._store(item, image, key=key))
            except BadResponseError as error:
                return await self._attempt_failed(started, error, turn)
        recorded = await finish_before_cancel(recording)
        await self._after_keep(recorded, stored, key, image)
        return None

    def _cache_key(self, request: GenerateRequest) -> str | None:
        """The request's key in the result cache; None when the job does not use the cache."""
        if self.cache is None or not self.config.cache:
            return None
        model = getattr(self.provider, "model", None) or self.config.model
        return request_key(self.config.provider, model, request)

    async def _answered_from_cache(self, item: ItemRecord, key: str) -> bool:
        """An earlier job paid for this very request: the item takes its image (True)."""
        assert self.cache is not None
        hit = await self.cache.lookup(key)  # answered in the order asked
        if hit is None or hit.job_id == item.job_id:
            return False
        await self._from_cache(item, hit)
        return True

    async def _start(
        self, item_id: str, request: GenerateRequest
    ) -> ItemRecord | Literal["wait"] | None:
        """Record the attempt (what `start_attempt` returns), once the workspace's shared
        start rate lets it go: the other processes' starts count too."""
        if self.quota is not None:
            quota = self.quota
            await quota.shared.start(quota.key, quota.rate_per_minute)
        return await self.verbs.start_attempt(item_id, self._reservation(request))

    def _reservation(self, request: GenerateRequest) -> float | None:
        """What the attempt reserves of a budget: its image's listed price (see `listed_price`)."""
        if self.config.limits.budget_usd is None:
            return None
        return listed_price(self.provider, self.config, request)

    async def _refused_earlier(self, item_id: str) -> None:
        message = f"not attempted: the provider refused the key earlier ({self.auth_error})"
        await self.verbs.fail(item_id, ErrorInfo(kind="auth", message=message))

    async def _attempt_failed(
        self, item: ItemRecord, error: ProviderError, turn: Turn
    ) -> ItemRecord | None:
        info = error_info(error)
        if isinstance(error, AuthError):
            self.auth_error = error
        limited = rate_limited_made(item) + isinstance(error, RateLimitedError)  # and this one
        delay = next_delay(attempts_made(item), error, self.policy, self.rng, rate_limited=limited)
        if isinstance(error, UnavailableError):  # the provider looks down: the lane's breaker
            turn.unavailable()
        if isinstance(error, RateLimitedError):  # the lane cools down (and an adaptive one shrinks)
            wait = error.retry_after if error.retry_after is not None else delay or 0.0
            turn.rate_limited(min(wait, self.policy.max_retry_after_s))
        if delay is None:
            await self.verbs.fail(item.id, info)
            return None
        updated = await self.verbs.retry_later(item.id, info, delay, error.retry_after)
        return updated if updated.status == ItemStatus.PENDING else None

"""The webhook sender: a task beside a running job that POSTs its events and never holds it up.

```python
sender = WebhookSender(journal, bus, job_id, spec, key, ...)
await sender.start()         # follows the job's events from now on
...                          # the job runs; nothing it does waits for the receiver
await sender.stop(drain=True)
```

Two tasks: a *follower* reads the job's events (`follow`: the in-process bus, gaps filled from
the journal), turns them into messages (`MessageMaker`) and puts them in a bounded queue; a
*poster* takes them one at a time, in order, and tries each up to `tries` times. The follower
never waits for the poster: a message that finds the queue full is kept in the journal as
undelivered at once. So is a message whose tries all failed, and, when the run stops, every
message still queued or being tried. `start` queues the job's messages kept by an earlier run
first (with their ids), and drops each from the journal once it is delivered.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from ..bus import EventBus
from ..clock import Clock
from ..events import Event
from ..follow import follow
from ..journal import Journal
from ..records import JobRecord
from .delivery import Poster
from .messages import MessageMaker
from .models import UndeliveredWebhook, WebhookMessage, WebhookSpec
from .policy import DeliverySettings
from .signing import load_secret

__all__ = ["WebhookSender", "sender_for"]

_log = logging.getLogger(__name__)

STOPPED = "the run stopped before it was delivered"
QUEUE_FULL = "the queue of messages to send was full"


@dataclass(frozen=True)
class _Queued:
    message: WebhookMessage
    tries_before: int = 0
    """Tries made by earlier runs (for a message kept in the journal)."""
    kept: bool = False
    """It is in the journal: drop it from there once delivered."""


class WebhookSender:
    """Sends one job's webhook messages while the job runs in this process."""

    def __init__(
        self,
        journal: Journal,
        bus: EventBus,
        job_id: str,
        spec: WebhookSpec,
        key: bytes,
        *,
        env: Mapping[str, str],
        images_root: Path,
        clock: Clock,
        settings: DeliverySettings | None = None,
        seed: int | None = None,
    ) -> None:
        self.journal, self.bus = journal, bus
        self.job_id = job_id
        self.spec = spec
        self._key = key
        self.env = env
        self.images_root = images_root
        self.clock = clock
        self.settings = settings or DeliverySettings()
        self.rng = random.Random(seed)
        self.queue: asyncio.Queue[_Queued] = asyncio.Queue(self.settings.queue_size)
        self.position = 0
        """The last event seq taken."""
        self.delivered: list[str] = []
        """Ids of the messages delivered, in order."""
        self.kept = 0
        """Messages kept in the journal as undelivered by this run."""
        self._maker: MessageMaker | None = None
        self._current: _Queued | None = None
        self._overflow: list[_Queued] = []
        """Messages that found the queue full, until the journal has them (a follower
        cancelled while keeping them leaves them here for `stop`)."""
        self._session: aiohttp.ClientSession | None = None
        self._poster: Poster | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def __repr__(self) -> str:  # never the key
        return f"<WebhookSender job={self.job_id} url={self.spec.url} queued={self.queue.qsize()}>"

    async def start(self) -> None:
        """Queue what an earlier run kept, then follow the job's events from now on."""
        snapshot = await self.journal.snapshot(self.job_id)
        self.position = snapshot.seq
        self._maker = MessageMaker.from_snapshot(
            self.spec,
            snapshot,
            images_root=self.images_root,
            now=self.clock.time(),
            progress_every_s=self.settings.progress_every_s,
        )
        for kept in await self.journal.undelivered(self.job_id):
            if self.queue.full():
                break  # the rest stay kept in the journal
            self.queue.put_nowait(_Queued(kept.message, kept.tries, kept=True))
        self._session = aiohttp.ClientSession()
        self._poster = Poster(
            self.spec.url,
            self._key,
            env=self.env,
            session=self._session,
            clock=self.clock,
            settings=self.settings,
            rng=self.rng,
        )
        self._tasks = [
            asyncio.create_task(self._follow(), name=f"webhook events {self.job_id}"),
            asyncio.create_task(self._post(), name=f"webhook posts {self.job_id}"),
        ]

    async def stop(self, *, drain: bool) -> None:
        """Take the job's last events, give the queue up to `drain_s` to go out (with `drain`,
        and while the receiver takes them), then keep what was not delivered in the journal."""
        follower, poster = self._tasks or (None, None)
        try:
            await _cancelled(follower)
            for event in (await self.journal.events_since(self.position, self.job_id))[0]:
                await self._take(event)
            if drain and poster is not None:
                await self._drain()
        finally:
            await _cancelled(poster)
            await self._keep_overflow()
            await self._keep_left()
            if self._session is not None:
                await self._session.close()
            if self.kept:
                _log.warning(
                    "job %s: %d webhook messages not delivered; `imagebatch webhooks %s` "
                    "lists them",
                    self.job_id,
                    self.kept,
                    self.job_id,
                )

    async def _drain(self) -> None:
        """Wait until the queue is sent, `drain_s` runs out, or the receiver is down (a message
        ran out of tries): the rest would only keep the command waiting; they are kept for
        later. A try or two that failed are tried again within `drain_s`."""
        assert self._poster is not None
        down = self._poster.down
        if down.is_set():
            return
        waits = [asyncio.ensure_future(self.queue.join()), asyncio.ensure_future(down.wait())]
        try:
            await asyncio.wait(
                waits, timeout=self.settings.drain_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.wait(waits)

    # ----------------------------------------------------------------- tasks

    async def _follow(self) -> None:
        events = follow(self.journal, self.bus, self.job_id, after=self.position)
        async with aclosing(events):
            async for event in events:
                await self._take(event)

    async def _take(self, event: Event) -> None:
        if event.seq <= self.position or self._maker is None:
            return
        self.position = event.seq
        for message in self._maker.messages(event, self.clock.monotonic()):
            try:
                self.queue.put_nowait(_Queued(message))
            except asyncio.QueueFull:
                self._overflow.append(_Queued(message))
        await self._keep_overflow()

    async def _keep_overflow(self) -> None:
        if self._overflow:
            await self._keep(list(self._overflow), 0, QUEUE_FULL)  # by id: twice is harmless
            self._overflow.clear()

    async def _post(self) -> None:
        assert self._poster is not None
        while True:
            queued = self._current = await self.queue.get()
            if await self._poster.deliver(queued.message):
                self.delivered.append(queued.message.id)
                if queued.kept:
                    await self.journal.forget_undelivered(self.job_id, [queued.message.id])
            else:
                await self._keep([queued], self._poster.tries, self._poster.last_error)
            self._current = None
            self.queue.task_done()

    # ---------------------------------------------------------------- keeping

    async def _keep_left(self) -> None:
        """Keep the message being tried and every queued one."""
        left: list[_Queued] = []
        while not self.queue.empty():
            left.append(self.queue.get_nowait())
            self.queue.task_done()
        current, self._current = self._current, None
        if current is not None:
            tries = self._poster.tries if self._poster is not None else 0
            await self._keep([current], tries, self._poster_error(STOPPED))
        await self._keep(left, 0, STOPPED)

    def _poster_error(self, default: str) -> str:
        error = self._poster.last_error if self._poster is not None else ""
        return f"{default} (last try: {error})" if error else default

    async def _keep(self, queued: list[_Queued], tries: int, error: str) -> None:
        now = self.clock.time()
        records = [
            UndeliveredWebhook(
                job_id=self.job_id,
                message=item.message,
                tries=item.tries_before + tries,
                last_error=error,
                stored_at=now,
            )
            for item in queued
        ]
        for record in records:
            _log.debug("webhook %s not delivered: %s", record.message.id, error)
        await self.journal.keep_undelivered(records)
        self.kept += len(records)


async def _cancelled(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` and wait for it to end; an error it ended with is logged, not raised."""
    if task is None:
        return
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and task.exception() is not None:
        _log.error("webhook task failed", exc_info=task.exception())


def sender_for(
    journal: Journal,
    bus: EventBus,
    job: JobRecord,
    *,
    env: Mapping[str, str],
    images_root: Path,
    clock: Clock,
    settings: DeliverySettings | None = None,
) -> WebhookSender | None:
    """The sender of `job`'s webhook, or None when its spec has none. The secret is read from
    the environment now (`ConfigError` if it is unset or malformed)."""
    spec = job.config.webhook
    if spec is None:
        return None
    key = load_secret(spec, env)
    return WebhookSender(
        journal,
        bus,
        job.id,
        spec,
        key,
        env=env,
        images_root=images_root,
        clock=clock,
        settings=settings,
    )

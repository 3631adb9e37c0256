"""The in-process event bus: the pipeline publishes, sinks (CLI, TUI, notebook, webhooks) read.

Publishing never blocks and never fails because of a sink: each subscription has a bounded
buffer, and a full buffer drops its oldest event (counted in `dropped`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from types import TracebackType

from .events import Event

__all__ = ["EventBus", "Subscription", "SubscriptionClosedError"]

_log = logging.getLogger(__name__)


class SubscriptionClosedError(Exception):
    """`get()` was called on, or was waiting on, a subscription that is closed."""


class EventBus:
    """Fans every published event out to every open subscription. Use it on one event loop."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []

    def publish(self, event: Event) -> None:
        """Hand `event` to every subscription. Never blocks; a failing subscription is closed."""
        for subscription in tuple(self._subscriptions):
            try:
                subscription._push(event)
            except Exception:
                _log.exception("event subscription failed; closing it")
                subscription.close()

    def subscribe(self, *, maxsize: int = 1000) -> Subscription:
        """A new subscription that receives every event published from now on."""
        subscription = Subscription(self, maxsize=maxsize)
        self._subscriptions.append(subscription)
        return subscription

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscriptions)

    def _remove(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)


class Subscription:
    """One reader's view of the bus: an async iterator of events, in publish order.

    Closing it (`close()`, or leaving its `with` block) unsubscribes, discards what is buffered,
    wakes any waiting `get()` with `SubscriptionClosedError` and ends iteration.
    """

    def __init__(self, bus: EventBus, *, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        self._bus = bus
        self._maxsize = maxsize
        self._buffer: deque[Event] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0
        """Events thrown away because this subscription's buffer was full."""

    @property
    def closed(self) -> bool:
        return self._closed

    async def get(self) -> Event:
        """The next event, waiting if need be. Raises `SubscriptionClosedError` once closed."""
        while not self._buffer:
            if self._closed:
                raise SubscriptionClosedError("the event subscription is closed")
            self._ready.clear()
            await self._ready.wait()
        return self._buffer.popleft()

    def get_nowait(self) -> Event | None:
        """The next event if one is buffered, else None."""
        return self._buffer.popleft() if self._buffer else None

    def close(self) -> None:
        """Unsubscribe and stop; safe to call more than once."""
        self._closed = True
        self._buffer.clear()
        self._bus._remove(self)
        self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.get()
        except SubscriptionClosedError:
            raise StopAsyncIteration from None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _push(self, event: Event) -> None:
        if self._closed:
            return
        if len(self._buffer) >= self._maxsize:
            self._buffer.popleft()
            self.dropped += 1
        self._buffer.append(event)
        self._ready.set()

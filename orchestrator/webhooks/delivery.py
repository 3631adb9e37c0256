"""One webhook message POSTed to the receiver, tried again on failure.

A try fails on a connection error, a timeout, a refused address or any answer other than 2xx
(redirects are not followed: one could lead to a local address). After a failed try the poster
waits (`policy.next_delay`) and tries again, up to `tries` tries in all. Every try carries the
message's same `webhook-id` and body, with a fresh `webhook-timestamp` and signature.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping

import aiohttp

from ..clock import Clock
from ..errors import ConfigError
from .addresses import check_url
from .models import WebhookMessage
from .policy import DeliverySettings, next_delay
from .signing import signed_headers

__all__ = ["Poster"]

_log = logging.getLogger(__name__)


class Poster:
    """POSTs messages to one receiver with one secret; `deliver` tries one message to the end."""

    def __init__(
        self,
        url: str,
        key: bytes,
        *,
        env: Mapping[str, str],
        session: aiohttp.ClientSession,
        clock: Clock,
        settings: DeliverySettings,
        rng: random.Random,
    ) -> None:
        self.url = url
        self._key = key
        self.env = env
        self.session = session
        self.clock = clock
        self.settings = settings
        self.rng = rng
        self.tries = 0
        """Tries made for the message being delivered now."""
        self.last_error = ""
        """Why the last failed try failed."""
        self.down = asyncio.Event()
        """Set when a message ran out of tries, cleared when the receiver takes one: a receiver
        that is down, not one that failed a try or two."""

    def __repr__(self) -> str:  # never the key
        return f"<Poster {self.url} tries={self.tries}>"

    async def deliver(self, message: WebhookMessage) -> bool:
        """Try `message` until the receiver takes it (True) or the tries run out (False)."""
        self.tries, self.last_error = 0, ""
        while True:
            self.tries += 1
            error, retry_after = await self._try(message)
            if error is None:
                self.down.clear()
                return True
            self.last_error = error
            delay = next_delay(self.tries, self.settings, self.rng, retry_after)
            _log.info("webhook %s try %d failed: %s", message.id, self.tries, error)
            if delay is None:
                self.down.set()
                return False
            await self.clock.sleep(delay)

    async def _try(self, message: WebhookMessage) -> tuple[str | None, float | None]:
        """One POST: None if it was taken, else why not (and the receiver's Retry-After)."""
        try:
            await check_url(self.url, self.env, "webhook.url")
        except ConfigError as error:
            return str(error), None
        headers = signed_headers(self._key, message.id, int(self.clock.time()), message.body)
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        try:
            async with self.session.post(
                self.url,
                data=message.body.encode(),
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                if 200 <= response.status < 300:
                    return None, None
                return f"HTTP {response.status}", _retry_after(response.headers)
        except TimeoutError:
            return f"no answer within {self.settings.timeout_s:g} s", None
        except (aiohttp.ClientError, OSError) as error:
            return f"{type(error).__name__}: {error}", None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return max(0.0, float(headers.get("Retry-After", "")))
    except ValueError:
        return None

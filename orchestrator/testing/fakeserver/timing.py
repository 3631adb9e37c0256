"""How long a fake request takes and what the fake provider lets through.

- `prompt_latency`: each prompt's latency, drawn once from a lognormal seeded by the server's
  seed and the prompt, so a benchmark can compute the very same draws and the bound they allow.
- `Gate`: the limits a real provider enforces without saying so in advance: a concurrency cap
  (a request arriving while `max_concurrent` are being worked on is answered 429) and a request
  quota (a token bucket of `quota_burst` requests refilled at `quota_per_minute`; a request that
  finds it empty is answered 429 with the wait for the next token as its Retry-After).
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable

from .options import FakeServerOptions

__all__ = ["Gate", "prompt_latency"]


def prompt_latency(seed: int, prompt: str, mean_s: float, sigma: float) -> float:
    """Seconds every request for `prompt` takes: lognormal with mean `mean_s` and shape `sigma`
    (the standard deviation of its logarithm), drawn from `sha256(seed, prompt)`."""
    if mean_s <= 0 or sigma <= 0:
        return max(mean_s, 0.0)
    digest = hashlib.sha256(f"{seed}\x00latency\x00{prompt}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    return rng.lognormvariate(math.log(mean_s) - sigma**2 / 2, sigma)


class Gate:
    """A fake provider's hidden limits: requests in flight, and the quota's token bucket.

    Only touched from the server's event loop. `clock` is `time.monotonic` unless a test moves
    time by hand.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.in_flight = 0
        """Requests admitted and not answered yet."""
        self._clock = clock
        self._tokens: float | None = None
        """Quota tokens left at `_at`; None before the first request (a full bucket)."""
        self._at = 0.0

    def refuse(self, options: FakeServerOptions) -> float | None:
        """None if the request may go on (it counts as in flight until `leave`), otherwise the
        seconds its 429 asks the client to wait. A refused request uses no quota."""
        cap = options.max_concurrent
        if cap is not None and self.in_flight >= cap:
            return options.retry_after_s
        if options.quota_per_minute is not None:
            wait = self._take(options.quota_per_minute / 60.0, options.quota_burst)
            if wait > 0:
                return wait
        self.in_flight += 1
        return None

    def leave(self) -> None:
        """An admitted request was answered (or its client left)."""
        self.in_flight -= 1

    def _take(self, per_second: float, burst: int) -> float:
        """Take one token if there is one (0.0); else the seconds until there is."""
        now = self._clock()
        if self._tokens is None:
            tokens = float(burst)
        else:
            tokens = min(float(burst), self._tokens + (now - self._at) * per_second)
        self._at = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return 0.0
        self._tokens = tokens
        return math.ceil(1000 * (1.0 - tokens) / per_second) / 1000

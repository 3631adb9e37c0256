"""The one retry policy: exponential backoff with full jitter that honours Retry-After. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .errors import ProviderError, RateLimitedError

__all__ = ["RetryPolicy", "next_delay"]

_MAX_EXPONENT = 62
"""Doubling beyond this cannot matter next to any sane cap, and keeps the float finite."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before another attempt at one item."""

    max_attempts: int = 3
    """Attempts in all, the first one included, leaving out those answered with a rate limit."""
    base_s: float = 1.0
    """The backoff cap after the first failed attempt; it doubles with each further failure."""
    cap_s: float = 60.0
    """The largest backoff cap."""
    max_retry_after_s: float = 3600.0
    """A provider's Retry-After longer than this is clamped to it."""
    max_rate_limited: int = 20
    """Rate limits (429s) one item may meet before it fails (a job's `limits.max_rate_limited`).
    They do not use up `max_attempts`:
    the provider billed nothing and said "later", not "no", and a per-minute quota met with a
    fixed concurrency would otherwise fail whole batches in its first minute. With the backoff
    doubling to `cap_s`, 20 of them span several minutes."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_rate_limited < 1:
            raise ValueError("max_attempts and max_rate_limited must be at least 1")
        if self.base_s < 0 or self.cap_s < 0 or self.max_retry_after_s < 0:
            raise ValueError("base_s, cap_s and max_retry_after_s must not be negative")


def next_delay(
    attempt: int,
    error: ProviderError,
    policy: RetryPolicy,
    rng: random.Random,
    *,
    rate_limited: int = 0,
) -> float | None:
    """Seconds to wait before the next attempt, or None when there should be no next attempt.

    `attempt` is how many attempts were made so far (1 after the first one failed), and
    `rate_limited` how many of them the provider answered with a rate limit (this one
    included): those count against `max_rate_limited`, the others against `max_attempts`. The
    wait is drawn uniformly from [0, min(cap_s, base_s * 2**(attempt - 1))] ("full jitter") and
    is never shorter than the error's `retry_after`, clamped to `max_retry_after_s`.
    """
    if not error.retryable:
        return None
    if isinstance(error, RateLimitedError):
        if rate_limited >= policy.max_rate_limited:
            return None
    elif attempt - rate_limited >= policy.max_attempts:
        return None
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    delay = rng.uniform(0.0, min(policy.cap_s, policy.base_s * 2.0**exponent))
    if error.retry_after is not None:
        floor = min(max(error.retry_after, 0.0), policy.max_retry_after_s)
        delay = max(delay, floor)
    return delay

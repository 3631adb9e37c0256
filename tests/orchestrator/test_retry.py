"""The retry policy: full jitter, caps, Retry-After, and when to stop."""

from __future__ import annotations

import random
from typing import Any

import pytest

from orchestrator.errors import (
    AttemptTimeoutError,
    ContentRejectedError,
    InvalidRequestError,
    ProviderError,
    RateLimitedError,
    UnavailableError,
)
from orchestrator.retry import RetryPolicy, next_delay

POLICY = RetryPolicy(max_attempts=10, base_s=1.0, cap_s=8.0)


def _delays(attempt: int, error: ProviderError, policy: RetryPolicy, n: int) -> list[float]:
    rng = random.Random(1234)
    delays = [next_delay(attempt, error, policy, rng) for _ in range(n)]
    assert all(d is not None for d in delays)
    return [d for d in delays if d is not None]


def test_same_seed_gives_same_delays() -> None:
    error = UnavailableError("503")
    first = [next_delay(a, error, POLICY, random.Random(7)) for a in range(1, 8)]
    second = [next_delay(a, error, POLICY, random.Random(7)) for a in range(1, 8)]
    assert first == second
    assert len(set(first)) > 1


def test_does_not_touch_the_global_random() -> None:
    random.seed(99)
    expected = random.random()
    random.seed(99)
    next_delay(1, UnavailableError("503"), POLICY, random.Random(1))
    assert random.random() == expected


@pytest.mark.parametrize(("attempt", "bound"), [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)])
def test_backoff_doubles_up_to_the_cap(attempt: int, bound: float) -> None:
    delays = _delays(attempt, UnavailableError("503"), POLICY, 2000)
    assert max(delays) <= bound
    assert max(delays) > 0.95 * bound


def test_full_jitter_covers_zero_to_the_cap() -> None:
    delays = _delays(4, AttemptTimeoutError("slow"), POLICY, 4000)
    assert min(delays) >= 0.0
    assert min(delays) < 0.05 * 8.0  # equal jitter would never go below half the cap
    assert max(delays) > 0.95 * 8.0
    assert sum(delays) / len(delays) == pytest.approx(4.0, rel=0.05)
    below_half = sum(d < 4.0 for d in delays) / len(delays)
    assert below_half == pytest.approx(0.5, abs=0.05)


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    delays = _delays(5000, UnavailableError("503"), RetryPolicy(max_attempts=10_000), 200)
    assert max(delays) <= 60.0


def test_never_below_retry_after() -> None:
    error = RateLimitedError("429", retry_after=30.0)
    delays = _delays(1, error, POLICY, 500)
    assert min(delays) == 30.0


def test_retry_after_below_the_jitter_is_only_a_floor() -> None:
    error = RateLimitedError("429", retry_after=2.0)
    delays = _delays(4, error, POLICY, 2000)
    assert min(delays) == 2.0
    assert max(delays) > 7.5


def test_huge_retry_after_is_clamped() -> None:
    policy = RetryPolicy(max_attempts=5, max_retry_after_s=120.0)
    error = RateLimitedError("429", retry_after=86_400.0)
    assert next_delay(1, error, policy, random.Random(0)) == 120.0


def test_exhausted_attempts_give_none() -> None:
    policy = RetryPolicy(max_attempts=3)
    error = UnavailableError("503")
    assert next_delay(2, error, policy, random.Random(0)) is not None
    assert next_delay(3, error, policy, random.Random(0)) is None
    assert next_delay(4, error, policy, random.Random(0)) is None


def test_rate_limits_count_apart_from_max_attempts() -> None:
    """A 429 is not billed and means "later": it does not use up one of `max_attempts`."""
    policy = RetryPolicy(max_attempts=1, max_rate_limited=3)
    limited = RateLimitedError("429")
    assert next_delay(1, limited, policy, random.Random(0), rate_limited=1) is not None
    assert next_delay(2, limited, policy, random.Random(0), rate_limited=2) is not None
    assert next_delay(3, limited, policy, random.Random(0), rate_limited=3) is None
    # two 429s and a 503: one counted attempt of one, so no more
    assert next_delay(3, UnavailableError("503"), policy, random.Random(0), rate_limited=2) is None
    mixed = RetryPolicy(max_attempts=2, max_rate_limited=3)
    assert next_delay(3, UnavailableError("503"), mixed, random.Random(0), rate_limited=2)


def test_single_attempt_policy_never_retries() -> None:
    policy = RetryPolicy(max_attempts=1)
    assert next_delay(1, UnavailableError("503"), policy, random.Random(0)) is None


@pytest.mark.parametrize(
    "error",
    [
        ContentRejectedError("unsafe"),
        InvalidRequestError("bad size", retry_after=5.0),
        ProviderError("unclassified"),
    ],
)
def test_permanent_errors_give_none(error: ProviderError) -> None:
    assert next_delay(1, error, POLICY, random.Random(0)) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_rate_limited": 0},
        {"base_s": -1.0},
        {"cap_s": -1.0},
        {"max_retry_after_s": -1},
    ],
)
def test_nonsense_policy_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)

"""`Limits`: how hard a job may push its provider (part of the job spec, see `spec.py`).

Attempts in flight (fixed, or `auto` learnt from the provider's 429s), starts per minute, the
time one attempt may take, attempts and rate limits per item and a spending cap. Validated like
the rest of the spec: unknown fields are errors and numbers are strict (`"3"` or `true` is not a
count).
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

__all__ = ["AUTO_MAX_CONCURRENCY", "MAX_CONCURRENCY", "Limits"]

MAX_CONCURRENCY = 64
"""The most attempts in flight at once a job may ask for (fixed, or as `auto`'s maximum)."""
AUTO_MAX_CONCURRENCY = 32
"""`max_concurrency` when `concurrency` is `auto` and no maximum is given."""


class Limits(BaseModel):
    """How hard to push the provider."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    concurrency: StrictInt | Literal["auto"] = 5
    """Attempts in flight at once: a whole number from 1 to 64, or `auto` to learn it from the
    provider's 429s (see `adaptive`), between 1 and `max_concurrency`."""
    max_concurrency: StrictInt | None = None
    """With `concurrency: "auto"`, the most attempts in flight it may grow to (default 32)."""
    rate_per_minute: StrictFloat | None = Field(default=None, gt=0, le=6000)
    """Attempt starts per minute, spaced evenly; none means no limit."""
    timeout_s: StrictFloat = Field(default=120.0, gt=0, le=3600)
    """Time one attempt may take before it is abandoned and retried."""
    max_attempts: StrictInt = Field(default=3, ge=1, le=20)
    """Attempts per item, the first included; a 429 does not use one up (see
    `max_rate_limited`)."""
    max_rate_limited: StrictInt = Field(default=20, ge=1, le=100)
    """Rate limits (429 answers) one item may meet before it fails; they do not use up
    `max_attempts`. 1 fails an item at its first 429."""
    budget_usd: StrictFloat | None = Field(default=None, gt=0)
    """Spending cap in USD: no attempt starts that could take spending past it (each attempt
    reserves its image's listed price); items left out end `failed` with reason `budget`."""

    @field_validator("concurrency", mode="before")
    @classmethod
    def _concurrency_shape(cls, value: object) -> object:
        if value == "auto" or _whole(value, 1, MAX_CONCURRENCY):
            return value
        raise ValueError(
            f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, or 'auto'"
        )

    @field_validator("max_concurrency", mode="before")
    @classmethod
    def _maximum_shape(cls, value: object) -> object:
        if value is None or _whole(value, 2, MAX_CONCURRENCY):
            return value
        raise ValueError(f"max_concurrency must be a whole number from 2 to {MAX_CONCURRENCY}")

    @model_validator(mode="after")
    def _maximum_only_with_auto(self) -> Limits:
        if self.max_concurrency is not None and self.concurrency != "auto":
            raise ValueError(
                'max_concurrency goes only with "concurrency": "auto" '
                "(a fixed concurrency is its own maximum)"
            )
        return self

    @property
    def adaptive(self) -> bool:
        """The concurrency is learnt from the provider's 429s (`concurrency: "auto"`)."""
        return self.concurrency == "auto"

    @property
    def most_in_flight(self) -> int:
        """The most attempts that may be in flight at once: the fixed concurrency, or auto's
        maximum."""
        if isinstance(self.concurrency, int):
            return self.concurrency
        return self.max_concurrency or AUTO_MAX_CONCURRENCY


def _whole(value: object, low: int, high: int) -> bool:
    """`value` is an integer (not a boolean) from `low` to `high`."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

"""What the fake API server does besides answering: latency and injected faults."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ...spec import check_regex

__all__ = ["FakeServerOptions"]

Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class FakeServerOptions(BaseModel):
    """Latency and faults of a fake server. Faults are drawn per request, deterministically from
    `seed`, the prompt and how many times that prompt was asked before."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_s: float = Field(default=0.0, ge=0.0, le=600.0)
    """Delay before every answer that is not an auth error or a 429 (the mean, with a sigma)."""
    latency_sigma: float | None = Field(default=None, ge=0.0, le=3.0)
    """With it, each prompt's delay is drawn once from a lognormal of mean `latency_s` and this
    shape, seeded by `seed` and the prompt (see `timing.prompt_latency`); without it, every
    delay is `latency_s`."""
    rate_429: Rate = 0.0
    """Share of requests answered 429 (OpenAI `rate_limit_exceeded`, Google RESOURCE_EXHAUSTED)."""
    retry_after_s: float = Field(default=1.0, ge=0.0, le=3600.0)
    """Wait a 429 asks for: `Retry-After`, and `retry-after-ms` or `RetryInfo`."""
    burst_429: int = Field(default=0, ge=0)
    """The first N requests of the server's life are answered 429."""
    max_concurrent: int | None = Field(default=None, ge=1)
    """A hidden concurrency cap: a request arriving while this many are being worked on gets
    429 (with `retry_after_s`)."""
    quota_per_minute: float | None = Field(default=None, gt=0.0)
    """A request quota: a token bucket of `quota_burst` refilled at this rate; a request that
    finds it empty gets 429 asking it to wait for the next token."""
    quota_burst: int = Field(default=1, ge=1)
    """How many requests the quota lets through at once after a quiet spell."""
    rate_500: Rate = 0.0
    """Share of requests answered 500 with the API's server-error body."""
    rate_hang: Rate = 0.0
    """Share of requests that never answer (until the client leaves or `hang_s` passes)."""
    hang_s: float = Field(default=3600.0, gt=0.0)
    """How long a hanging request lasts at most; then it is answered 504."""
    rate_malformed_json: Rate = 0.0
    """Share of requests answered 200 with JSON cut off half-way."""
    rate_truncated_b64: Rate = 0.0
    """Share of requests answered with the image's base64 cut off half-way."""
    rate_not_image: Rate = 0.0
    """Share of requests answered with valid base64 of bytes that are no image."""
    credit: int | None = Field(default=None, ge=0)
    """Images the account can pay for: once this many were served, every request is answered
    429 `insufficient_quota` (OpenAI) or 429 RESOURCE_EXHAUSTED naming a daily quota and no
    retry delay (Google; a rate limit names a per-minute quota). None: no end."""
    reject_pattern: str | None = None
    """Regex, searched case-insensitively in the prompt: matching prompts are refused by the safety
    system (OpenAI 400 `moderation_blocked`, Gemini `blockReason`, Imagen `raiFilteredReason`)."""
    require_key: str | None = Field(default=None, repr=False)
    """The one key accepted (Bearer for OpenAI, `x-goog-api-key` for Google); None accepts any."""
    echo_key: bool = False
    """A hostile server: auth errors quote the whole key received (for secret-canary tests)."""
    seed: int = 0
    """Seed of the fault and latency draws."""
    log_size: int = Field(default=1000, ge=1)
    """How many of the last requests `stats.log` keeps."""

    _reject_pattern_compiles = field_validator("reject_pattern")(check_regex)

    @model_validator(mode="after")
    def _rates_fit(self) -> FakeServerOptions:
        total = (
            self.rate_429
            + self.rate_500
            + self.rate_hang
            + self.rate_malformed_json
            + self.rate_truncated_b64
            + self.rate_not_image
        )
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"the fault rates add up to {total:.2f}; they must add up to 1 at most"
            )
        return self

"""`mock`: an offline, seeded, deterministic provider that draws real PNGs with Pillow.

Every random decision of an attempt (its fault and its latency) comes from a generator seeded
with `sha256("{seed}|{item_id}|{prompt}|{attempt}")`: the same attempt always behaves the same,
and the next attempt rolls again. The picture depends on the seeds, prompt, size and
references, and shows the prompt and the item id, never the attempt number.

Faults are drawn from one roll, so each `rate_*` is the exact share of attempts that fail that
way and the rates must add up to at most 1. Every outcome, fault or image, waits its latency.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import random
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import (
    ConfigError,
    ContentRejectedError,
    InvalidRequestError,
    RateLimitedError,
    UnavailableError,
)
from ..spec import check_regex
from .base import Capabilities, GeneratedImage, GenerateRequest, ProviderConfig
from .mock_drawing import draw_png, seeded_random

__all__ = ["MockOptions", "MockProvider"]

DEFAULT_MODEL = "mock-1"
DEFAULT_SIZE = (512, 512)
TINY_PIXELS = 32 * 32
"""The mock draws a picture of at most this many pixels (no text, no reference) in about a
tenth of a millisecond: on the event loop, not in a thread."""
HANG_S = 3600.0
Fault = Literal["429", "500", "hang", "reject", "bad_bytes"]


class MockOptions(BaseModel):
    """The mock's `provider_options`: latency and injected faults.

    Numbers are strict, as in the spec: `"3"` or `true` is refused, and a rate or a time takes an
    integer or a float.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    seed: StrictInt = 0
    """Seeds every picture and every fault decision."""
    latency_mean_s: StrictFloat = Field(default=0.2, ge=0, le=HANG_S)
    """Mean time one attempt takes."""
    latency_distribution: Literal["fixed", "uniform", "exponential", "lognormal"] = "uniform"
    """How attempt times spread around the mean (`uniform` is 0 to twice the mean)."""
    latency_sigma: StrictFloat = Field(default=0.5, gt=0, le=3)
    """Shape of the `lognormal` spread: the standard deviation of the time's logarithm."""
    rate_429: StrictFloat = Field(default=0.0, ge=0, le=1)
    """Share of attempts answered with 429 (`RateLimitedError`)."""
    retry_after_s: StrictFloat = Field(default=1.0, ge=0)
    """The `retry_after` a 429 carries."""
    rate_500: StrictFloat = Field(default=0.0, ge=0, le=1)
    """Share of attempts answered with a server error (`UnavailableError`)."""
    rate_hang: StrictFloat = Field(default=0.0, ge=0, le=1)
    """Share of attempts that hang for an hour (until the per-attempt timeout cuts them)."""
    rate_reject: StrictFloat = Field(default=0.0, ge=0, le=1)
    """Share of attempts refused by "moderation" (`ContentRejectedError`)."""
    reject_pattern: str | None = None
    """Regular expression; prompts it matches (`re.search`) are always refused."""
    rate_bad_bytes: StrictFloat = Field(default=0.0, ge=0, le=1)
    """Share of attempts that return bytes that are not an image."""
    max_size_px: StrictInt = Field(default=2048, ge=16, le=8192)
    """Largest width or height the mock draws."""
    fail_first: dict[str, Annotated[StrictInt, Field(ge=0)]] = Field(default_factory=dict)
    """Item id -> how many of its first attempts answer with a server error (a demo's failure
    that a retry fixes: `{"page-07": 1}` with `max_attempts: 1` fails page-07 once)."""

    _reject_pattern_compiles = field_validator("reject_pattern")(check_regex)

    @model_validator(mode="after")
    def _rates_fit(self) -> MockOptions:
        total = sum(rate for _, rate in self.fault_rates())
        if total > 1 + 1e-9:
            raise ValueError(f"the rate_* options add up to {total:g}; their sum must be <= 1")
        return self

    def fault_rates(self) -> tuple[tuple[Fault, float], ...]:
        return (
            ("429", self.rate_429),
            ("500", self.rate_500),
            ("hang", self.rate_hang),
            ("reject", self.rate_reject),
            ("bad_bytes", self.rate_bad_bytes),
        )


def parse_options(options: dict[str, object]) -> MockOptions:
    """Validate `provider_options`, or raise `ConfigError` naming the bad option and the fix."""
    try:
        return MockOptions.model_validate(options)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        where = f"provider_options.{field}" if field else "provider_options"
        if first["type"] == "extra_forbidden":
            known = ", ".join(MockOptions.model_fields)
            message = f"unknown option for the mock provider; use one of {known}"
        else:
            message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{where}: {message}") from None


_DRAWING: ThreadPoolExecutor | None = None


def _drawing() -> ThreadPoolExecutor:
    """The threads that draw: one per CPU. Drawing holds the GIL for much of its time, so more
    threads draw no faster, and each one more is one more the event loop can wait behind for
    its turn (a 5 ms switch interval each: 40 ms with eight drawing at once)."""
    global _DRAWING
    if _DRAWING is None:
        _DRAWING = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="mock-draw")
    return _DRAWING


def _tiny(request: GenerateRequest) -> bool:
    """A picture of at most `TINY_PIXELS`, without a reference: drawn on the event loop."""
    try:
        size = _parse_size(request.size)
    except ValueError:
        return False  # `_draw` says what is wrong with it
    return size is not None and size[0] * size[1] <= TINY_PIXELS and not request.references


def _parse_size(size: str | None) -> tuple[int, int] | None:
    """`WIDTHxHEIGHT` as numbers; none for no size or `auto`; `ValueError` for anything else."""
    if size is None or size == "auto":
        return None
    width, sep, height = size.partition("x")
    if not (sep and width.isdigit() and height.isdigit()) or int(width) < 1 or int(height) < 1:
        raise ValueError(f"size {size!r} is not WIDTHxHEIGHT")
    return int(width), int(height)


class MockProvider:
    """A provider that needs no network: seeded pictures, latency and faults."""

    name = "mock"
    default_model = DEFAULT_MODEL
    """The model used when the spec names none (read without building the provider)."""

    def __init__(self, config: ProviderConfig) -> None:
        self.options = parse_options(config.options)
        self.model = config.model or DEFAULT_MODEL
        self.capabilities = Capabilities(
            default_model=DEFAULT_MODEL, models=(DEFAULT_MODEL,), supports_references=True
        )
        pattern = self.options.reject_pattern
        self._reject = re.compile(pattern) if pattern is not None else None
        options = self.options
        self._chance = any(rate for _, rate in options.fault_rates()) or not (
            options.latency_mean_s == 0 or options.latency_distribution == "fixed"
        )
        """Whether an attempt draws anything at random (a fault, a latency). When it does not,
        its generator is not made: seeding one costs more than drawing a 16x16 picture's
        shapes, and the answers are the same without it."""

    def check(self, request: GenerateRequest) -> None:
        """Refuse sizes the mock cannot draw."""
        try:
            size = _parse_size(request.size)
        except ValueError:
            raise ConfigError(
                f"size {request.size!r}: use WIDTHxHEIGHT, for example 512x512"
            ) from None
        limit = self.options.max_size_px
        if size is not None and max(size) > limit:
            raise ConfigError(
                f"size {request.size}: the mock draws at most {limit}x{limit}; use a smaller "
                "size or raise provider_options.max_size_px"
            )

    async def generate(self, request: GenerateRequest) -> GeneratedImage:
        """Wait the drawn latency, then raise the drawn fault or return a drawn PNG."""
        rng = self._attempt_random(request) if self._chance else None
        fault = self._roll_fault(rng)
        latency = self._draw_latency(rng)
        if fault == "hang":
            await asyncio.sleep(HANG_S)
            raise UnavailableError(f"mock: attempt hung for {HANG_S:g} s")
        await asyncio.sleep(latency)
        if self._reject is not None and self._reject.search(request.prompt):
            raise ContentRejectedError("mock: prompt matches provider_options.reject_pattern")
        if request.attempt <= self.options.fail_first.get(request.item_id, 0):
            raise UnavailableError(
                f"mock: provider_options.fail_first fails attempt {request.attempt}"
            )
        self._raise_fault(fault)
        if fault == "bad_bytes":
            assert rng is not None  # a fault is drawn only with a generator
            junk = b"\x89PNG\r\n\x1a\n" + rng.randbytes(256)
            return self._result(junk)
        if _tiny(request):  # a tenth of a millisecond: less than a trip to a thread costs
            return self._result(self._draw(request))
        loop = asyncio.get_running_loop()
        return self._result(await loop.run_in_executor(_drawing(), self._draw, request))

    async def aclose(self) -> None:
        """Nothing to release: the mock holds no connections."""

    def latency_of(self, request: GenerateRequest) -> float:
        """Seconds the attempt `request` waits before its answer (a hang aside): benchmarks
        compute the bound a job's latencies allow from the very draws the mock will make."""
        rng = self._attempt_random(request)
        self._roll_fault(rng)
        return self._draw_latency(rng)

    def _attempt_random(self, request: GenerateRequest) -> random.Random:
        return seeded_random(
            f"{self.options.seed}|{request.item_id}|{request.prompt}|{request.attempt}"
        )

    def _roll_fault(self, rng: random.Random | None) -> Fault | None:
        if rng is None:
            return None  # every rate is 0
        roll = rng.random()
        for fault, rate in self.options.fault_rates():
            if roll < rate:
                return fault
            roll -= rate
        return None

    def _draw_latency(self, rng: random.Random | None) -> float:
        mean = self.options.latency_mean_s
        kind = self.options.latency_distribution
        if mean == 0 or kind == "fixed" or rng is None:
            return mean
        if kind == "uniform":
            return rng.uniform(0, 2 * mean)
        if kind == "exponential":
            return rng.expovariate(1 / mean)
        sigma = self.options.latency_sigma
        return rng.lognormvariate(math.log(mean) - sigma**2 / 2, sigma)

    def _raise_fault(self, fault: Fault | None) -> None:
        if fault == "429":
            raise RateLimitedError(
                "mock: 429 Too Many Requests (injected, rate_429)",
                retry_after=self.options.retry_after_s,
            )
        if fault == "500":
            raise UnavailableError("mock: 500 Internal Server Error (injected, rate_500)")
        if fault == "reject":
            raise ContentRejectedError(
                "mock: content rejected by moderation (injected, rate_reject)"
            )

    def _draw(self, request: GenerateRequest) -> bytes:
        try:
            size = _parse_size(request.size) or DEFAULT_SIZE
        except ValueError as error:
            raise InvalidRequestError(f"mock: {error}") from None
        limit = self.options.max_size_px
        width, height = min(size[0], limit), min(size[1], limit)
        reference = request.references[0].data if request.references else None
        ref_digest = hashlib.sha256(reference).hexdigest() if reference else "-"
        seed_text = f"{self.options.seed}|{request.seed}|{request.prompt}|{width}x{height}"
        return draw_png(
            seed=f"{seed_text}|{ref_digest}",
            size=(width, height),
            prompt=request.prompt,
            label=request.item_id,
            reference=reference,
        )

    def _result(self, data: bytes) -> GeneratedImage:
        return GeneratedImage(
            data=data, mime_type="image/png", model=self.model, usage={"images": 1}, cost_usd=0.0
        )

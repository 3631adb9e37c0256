"""What a user asks for: the job spec and its validation (`specfile` reads it from files).

Everything here is validated with pydantic and `extra="forbid"`: a misspelt field is an error
that names the field, never a value silently ignored. Numbers are strict too: `"3"` or `true`
is not a count, and a float field takes an integer but never a string or a boolean.

The spec's parts each have a module of their own where they are long: `Limits` in `limits.py`,
the field check and the one-line error message in `validation.py`; all are importable from here.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError
from .limits import Limits
from .references import graph_problem
from .validation import check_regex, format_validation_error
from .webhooks.models import WebhookSpec

__all__ = [
    "OVERRIDABLE_LIMITS",
    "Defaults",
    "ItemSpec",
    "JobConfig",
    "JobSpec",
    "Limits",
    "OutputSpec",
    "apply_overrides",
    "check_regex",
    "format_validation_error",
    "parse_spec",
]

ITEM_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SIZE_PATTERN = re.compile(r"^[1-9][0-9]{0,4}x[1-9][0-9]{0,4}$")
MAX_OUTPUT_SIDE = 8192
"""Largest side of a processed image."""
MAX_OUTPUT_PIXELS = 40_000_000
"""Largest area of a processed image (a cover fit enlarges to the whole box)."""
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


# `StrictInt` takes only integers (not "3", not true, not 3.0). `StrictFloat` takes integers and
# floats but not strings or booleans: pydantic's strict float still accepts an int.


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Params(_Model):
    """Image parameters a job sets as defaults and an item may override."""

    size: str | None = None
    """Image size as `WIDTHxHEIGHT` (or `auto` where the provider allows it)."""
    quality: str | None = None
    """Provider quality level, for example `low`, `medium`, `high`, `standard`, `hd`."""
    style: str | None = None
    """Provider style hint, for example `vivid` or `natural`."""
    seed: StrictInt | None = None
    """Seed for providers that take one (the mock does)."""
    negative_prompt: str | None = Field(default=None, max_length=4000)
    """What the image should not show, for providers that take it."""

    @field_validator("size")
    @classmethod
    def _size_shape(cls, value: str | None) -> str | None:
        if value is None or value == "auto" or SIZE_PATTERN.fullmatch(value):
            return value
        raise ValueError("size must look like 1024x1024 (WIDTHxHEIGHT) or be 'auto'")


class Defaults(Params):
    """Parameters applied to every item that does not set its own."""

    preset: str | None = None
    """A prompt preset (see `presets`) whose wording goes around every item's prompt."""


class ItemSpec(Params):
    """One image of the job."""

    id: str
    """1-64 letters, digits, `-`, `_`, `.`; unique in the job; becomes a file name."""
    prompt: str = Field(min_length=1, max_length=32000)
    """What to draw."""
    references: tuple[str, ...] = Field(default=(), max_length=16)
    """Reference images for providers that take them: ids of other items (this one waits for
    them and is sent their images), http(s) URLs, or file paths relative to the spec file."""
    preset: str | None = None
    """This item's prompt preset, instead of `defaults.preset` (`none`: no preset)."""
    priority: StrictInt = Field(default=0, ge=-1_000_000, le=1_000_000)
    """Items with a higher priority start first; equal ones keep the spec's order."""

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not ITEM_ID_PATTERN.fullmatch(value) or ".." in value or value.startswith("."):
            raise ValueError(
                "item id must be 1-64 letters, digits, '-', '_' or '.', "
                "not start with '.' and not contain '..'"
            )
        return value

    @field_validator("references")
    @classmethod
    def _references_shape(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for ref in value:
            if not ref.strip() or "\x00" in ref or len(ref) > 4096:
                raise ValueError(
                    "each reference must be an item id, an http(s) URL or a file path: "
                    "not empty, at most 4096 characters, no NUL character"
                )
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must not be blank")
        return value


class OutputSpec(_Model):
    """What post-processing writes next to the raw image."""

    format: Literal["jpeg", "png", "webp"] = "jpeg"
    """Format of the processed image."""
    max_size: str | None = None
    """Box `WIDTHxHEIGHT` the processed image is fitted to; none keeps the raw size."""
    fit: Literal["cover", "contain"] = "cover"
    """`cover` fills the box and crops; `contain` fits inside it."""
    quality: StrictInt = Field(default=80, ge=1, le=100)
    """Encoder quality for jpeg and webp."""
    thumbnail_px: StrictInt = Field(default=256, ge=16, le=1024)
    """Longest side of the thumbnail."""

    @field_validator("max_size")
    @classmethod
    def _box_shape(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not SIZE_PATTERN.fullmatch(value):
            raise ValueError("max_size must look like 1024x768 (WIDTHxHEIGHT)")
        width, height = (int(side) for side in value.split("x"))
        if max(width, height) > MAX_OUTPUT_SIDE or width * height > MAX_OUTPUT_PIXELS:
            raise ValueError(
                f"max_size must have sides of at most {MAX_OUTPUT_SIDE} pixels and at most "
                f"{MAX_OUTPUT_PIXELS // 1_000_000} million pixels in all"
            )
        return value


class JobConfig(_Model):
    """Everything about a job except its items; stored on the job record."""

    key: str
    """At most one job per key is active (for example `story-123`)."""
    name: str = Field(default="", max_length=200)
    """A human name for listings."""
    provider: str = "mock"
    """Provider name from the registry: `mock`, `openai`, `gemini`, or a plugin's."""
    model: str | None = None
    """Provider model; none takes the provider's default."""
    allow_unknown_model: StrictBool = False
    """Send a model name the provider does not list (a new model, a plugin's); off by default,
    so a typo fails before the job is created."""
    provider_options: dict[str, Any] = Field(default_factory=dict)
    """Options the provider validates itself (the mock's latency and faults, for example)."""
    defaults: Defaults = Defaults()
    limits: Limits = Limits()
    output: OutputSpec = OutputSpec()
    consistency: Literal["none", "first-as-reference"] = "none"
    """`first-as-reference`: the anchor is generated first and sent as a reference image with
    every other item (the same character on every page)."""
    anchor: str | None = None
    """The item the others take as reference (`first-as-reference`); none: the first item."""
    cache: StrictBool = True
    """Reuse the image of an identical request from an earlier job (free, no call); false
    always asks the provider (`--no-cache`)."""
    webhook: WebhookSpec | None = None
    """Where to POST the job's events, signed per Standard Webhooks (see `webhooks`)."""

    @field_validator("key")
    @classmethod
    def _key_shape(cls, value: str) -> str:
        if not KEY_PATTERN.fullmatch(value):
            raise ValueError("key must be 1-128 letters, digits, '-', '_', '.' or ':'")
        return value


class JobSpec(JobConfig):
    """A whole job as submitted: its config and its items."""

    items: tuple[ItemSpec, ...] = Field(min_length=1, max_length=10000)

    @model_validator(mode="after")
    def _unique_ids(self) -> JobSpec:
        seen: dict[str, str] = {}
        for index, item in enumerate(self.items):
            folded = item.id.casefold()
            if item.id in seen.values():
                raise ValueError(f"items[{index}].id {item.id!r} is used twice; ids must be unique")
            if folded in seen:
                raise ValueError(
                    f"items[{index}].id {item.id!r} differs from {seen[folded]!r} only in case; "
                    "ids become file names, so make them differ in more than case"
                )
            seen[folded] = item.id
        problem = graph_problem(self.items, self.consistency, self.anchor)
        if problem is not None:
            raise ValueError(problem)
        return self

    def params_for(self, item: ItemSpec) -> Params:
        """The item's parameters: its own where it sets them, the job's defaults elsewhere."""
        fields = set(Params.model_fields)
        own = item.model_dump(include=fields, exclude_none=True)
        defaults = self.defaults.model_dump(include=fields, exclude_none=True)
        return Params.model_validate({**defaults, **own})

    @property
    def config(self) -> JobConfig:
        return JobConfig.model_validate(self.model_dump(exclude={"items"}))


def parse_spec(data: Any, source: str) -> JobSpec:
    """Validate a spec given as Python data; raise `ConfigError` with one clear line."""
    try:
        return JobSpec.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, source)) from None


OVERRIDABLE_LIMITS = (
    "concurrency",
    "max_concurrency",
    "rate_per_minute",
    "timeout_s",
    "max_attempts",
    "max_rate_limited",
)
"""The `limits` a run's options may set over a spec (the CLI's flags, the notebook's keywords)."""


def apply_overrides(spec: JobSpec, **overrides: Any) -> JobSpec:
    """Return `spec` with CLI flag values (those not None) put over it, validated again."""
    data = spec.model_dump()
    for name, value in overrides.items():
        if value is None:
            continue
        if name in OVERRIDABLE_LIMITS:
            data["limits"][name] = value
            if name == "concurrency" and value != "auto":
                data["limits"]["max_concurrency"] = None  # a fixed number has no maximum
        else:
            data[name] = value
    return parse_spec(data, "command line")

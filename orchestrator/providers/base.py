"""The provider protocol: what the pipeline asks of an image API adapter.

A provider turns a `GenerateRequest` into a `GeneratedImage` or raises one error of
`orchestrator.errors.ProviderError`'s tree. It never retries by itself (SDK retries are off): the
orchestrator owns retries, timeouts and concurrency. A provider is built once per run, on the
running event loop, from a `ProviderConfig`, and closed with `aclose()`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Capabilities",
    "GenerateRequest",
    "GeneratedImage",
    "Provider",
    "ProviderConfig",
    "ProviderFactory",
    "Reference",
    "until_ready",
]

_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderConfig(_Frozen):
    """What a provider is built from. Keys come from `env`, never from a spec or the journal."""

    model: str | None = None
    """Model name from the spec; none means the provider's default."""
    options: dict[str, Any] = Field(default_factory=dict)
    """The spec's `provider_options`; the provider validates them (extra fields are errors)."""
    env: Mapping[str, str] = Field(default_factory=dict, repr=False)
    """Environment to read keys and base URLs from (`os.environ` in the CLI)."""


class Reference(_Frozen):
    """A reference image passed to providers that accept them."""

    data: bytes = Field(repr=False)
    mime_type: str
    name: str
    """A file name for multipart uploads, e.g. `ref-0.png`."""


class GenerateRequest(_Frozen):
    """One attempt at one item."""

    job_id: str
    item_id: str
    prompt: str
    attempt: int = 1
    """1 for the first attempt; the mock uses it to decide injected faults deterministically."""
    size: str | None = None
    quality: str | None = None
    style: str | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    references: tuple[Reference, ...] = ()


class GeneratedImage(_Frozen):
    """What a provider returns: the image bytes as received, and what it cost."""

    data: bytes = Field(repr=False)
    mime_type: str
    """`image/png`, `image/jpeg` or `image/webp`: what the bytes claim to be."""
    model: str
    usage: dict[str, Any] | None = None
    """Token counts or other usage the API reported."""
    cost_usd: float | None = None
    """What this image cost, where the provider can tell; none when unknown."""
    revised_prompt: str | None = None


class Capabilities(_Frozen):
    """What a provider can do, so bad requests fail before any call."""

    default_model: str
    models: tuple[str, ...] = ()
    """Known models; empty means any name is passed through."""
    sizes: tuple[str, ...] = ()
    """Sizes the default model accepts; empty means any `WxH`."""
    supports_references: bool = False
    prices: dict[str, float] = Field(default_factory=dict)
    """Price in USD per image, keyed `model/size/quality` (estimates before a run)."""

    def knows_model(self, model: str) -> bool:
        """Whether `model` is one of `models` (or a dated snapshot of one, `name-2025-12-16`);
        always True when the provider lists no models."""
        return not self.models or _SNAPSHOT.sub("", model) in self.models or model in self.models


@runtime_checkable
class Provider(Protocol):
    """An image API adapter."""

    name: str
    capabilities: Capabilities

    def check(self, request: GenerateRequest) -> None:
        """Raise `ConfigError` if this request can never succeed (bad size for the model, ...).

        Called for every item before a job starts, so bad input fails before any paid call.
        """
        ...

    async def generate(self, request: GenerateRequest) -> GeneratedImage:
        """Make one image, or raise a `ProviderError`. Must be safe to cancel."""
        ...

    async def aclose(self) -> None:
        """Release connections. Called once, on the loop the provider was built on."""
        ...


async def until_ready(provider: Provider) -> None:
    """Wait until `provider` can send a request. A provider that loads its SDK in the
    background says so with an optional `async ready()`; the others are ready at once."""
    ready = getattr(provider, "ready", None)
    if ready is not None:
        await ready()


class ProviderFactory(Protocol):
    """A provider class or function: `factory(config) -> Provider`.

    Raises `ConfigError` for bad options or a missing key (naming the variable to set).
    """

    def __call__(self, config: ProviderConfig) -> Provider: ...

"""A provider for pipeline tests that answers each item's attempts from a script."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from PIL import Image

from orchestrator.clock import Clock
from orchestrator.errors import ProviderError
from orchestrator.providers.base import (
    Capabilities,
    GeneratedImage,
    GenerateRequest,
    ProviderConfig,
)
from orchestrator.spec import JobSpec, parse_spec

Outcome = str | ProviderError
"""`ok`, `hang` (waits until cancelled), `bad` (bytes that are no image) or an error to raise."""


def png_bytes(width: int = 64, height: int = 48, colour: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Call:
    item_id: str
    attempt: int
    at: float


@dataclass
class ScriptedProvider:
    script: Mapping[str, Sequence[Outcome]] = field(default_factory=dict)
    clock: Clock | None = None
    calls: list[Call] = field(default_factory=list)
    gate: asyncio.Event | None = None
    """When set, every `ok` answer waits for this event first."""
    on_answer: Callable[[], object] | None = None
    """Called (soon after) every time an `ok` answer is returned: lets a test cancel then."""
    name: str = "scripted"
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(default_model="scripted-1")
    )

    def __call__(self, config: ProviderConfig) -> ScriptedProvider:
        return self  # the Orchestrator's factory hook: this instance serves every run

    def check(self, request: GenerateRequest) -> None:
        return None

    def calls_for(self, item_id: str) -> list[Call]:
        return [call for call in self.calls if call.item_id == item_id]

    async def generate(self, request: GenerateRequest) -> GeneratedImage:
        at = self.clock.monotonic() if self.clock else 0.0
        self.calls.append(Call(request.item_id, request.attempt, at))
        outcomes = self.script.get(request.item_id, ())
        index = len(self.calls_for(request.item_id)) - 1
        outcome = outcomes[index] if index < len(outcomes) else "ok"
        if isinstance(outcome, ProviderError):
            raise outcome
        if outcome == "hang":
            await asyncio.Event().wait()
        if outcome == "bad":
            return GeneratedImage(data=b"<html>oops</html>", mime_type="image/png", model="s")
        if self.gate is not None:
            await self.gate.wait()
        if self.on_answer is not None:
            asyncio.get_running_loop().call_soon(self.on_answer)
        return GeneratedImage(data=png_bytes(), mime_type="image/png", model="s", cost_usd=0.01)

    async def aclose(self) -> None:
        return None


def make_spec(count: int = 3, **limits: object) -> JobSpec:
    return parse_spec(
        {
            "key": "test-key",
            "provider": "scripted",
            "limits": {"timeout_s": 5, **limits},
            "output": {"format": "png", "thumbnail_px": 32},
            "items": [{"id": f"i{n}", "prompt": f"prompt {n}"} for n in range(count)],
        },
        "test",
    )

"""`ScriptedProvider`: a provider whose every answer a test decides in advance, and helpers to
build a spec for it and follow a job through its handle.

For tests of whatever drives the orchestrator (the runner, a front end, a plugin's hooks): script
per item which attempts fail and how (`ProviderError`s), hang, return bytes that are no image, or
wait for a gate; then read back every call made (`calls`, `calls_for`) to prove what was asked,
when, and that nothing was requested twice. Register the instance itself as the factory:

```python
provider = ScriptedProvider({"i0": [RateLimitedError("busy", retry_after=1.0), "ok"]})
orchestrator = Orchestrator(workspace, providers={"scripted": provider})
job = await orchestrator.submit(make_spec(3))
```
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field

from PIL import Image

from ..errors import ProviderError, RateLimitedError
from ..events import Event
from ..handle import JobHandle
from ..providers.base import Capabilities, GeneratedImage, GenerateRequest, ProviderConfig
from ..spec import JobSpec, parse_spec

__all__ = ["Call", "Outcome", "ScriptedProvider", "make_spec", "next_event", "png_bytes"]

Outcome = str | ProviderError
"""`ok`, `held` (answers once `gate` is set), `hang` (waits until cancelled), `bad` (bytes that
are no image) or an error to raise."""


def png_bytes(width: int = 64, height: int = 48, colour: str = "teal") -> bytes:
    """A valid PNG of one colour: the image a `ScriptedProvider` answers with by default."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Call:
    """One call of `ScriptedProvider.generate`, as the provider saw it."""

    item_id: str
    attempt: int
    job_id: str
    at: float
    """The running loop's time when the call was made (virtual under looptime)."""
    prompt: str = ""
    """The prompt the provider was sent."""
    references: tuple[bytes, ...] = ()
    """The reference images it was sent, in order."""


@dataclass
class ScriptedProvider:
    """A provider that answers each item's attempts from `script` and records every call.

    It is its own factory (`providers={"scripted": provider}`), so one instance serves every run
    and a test can inspect `calls` afterwards. Specs from `make_spec` name it as `scripted`.
    """

    script: Mapping[str, Sequence[Outcome]] = field(default_factory=dict)
    """Per item id, the outcome of each call in turn; calls beyond the script answer `ok`."""
    calls: list[Call] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    """`held` answers wait for this event."""
    latency_s: float = 0.0
    """Every answer takes this long (loop time), then arrives over a few loop turns, as a body
    read from a socket does."""
    on_answer: Callable[[], object] | None = None
    """Called (soon after) every time an `ok` answer is returned: lets a test cancel then."""
    image: bytes = field(default_factory=png_bytes)
    """The bytes every `ok` answer carries, unless `images` names the item."""
    images: Mapping[str, bytes] = field(default_factory=dict)
    """Per item id, the bytes its `ok` answers carry instead of `image`."""
    price_usd: float | None = None
    """The listed price of one image, for budgets (None: unknown, so a budget is refused)."""
    max_concurrent: int | None = None
    """A hidden cap, as a provider's concurrency limit: a call made while this many are under
    way is answered 429 at once, asking to wait `cap_retry_after_s` (None: it names no wait)."""
    cap_retry_after_s: float | None = 1.0
    under_way: int = 0
    """Calls under way now (those the cap did not refuse)."""
    peak: int = 0
    """The most calls under way at once."""
    name: str = "scripted"
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(default_model="scripted-1", supports_references=True)
    )

    def __call__(self, config: ProviderConfig) -> ScriptedProvider:
        return self  # the Orchestrator's factory hook: this instance serves every run

    def check(self, request: GenerateRequest) -> None:
        """Accept every request."""
        return None

    def price(self, request: GenerateRequest) -> float | None:
        """The listed price of one image (`price_usd`)."""
        return self.price_usd

    def calls_for(self, item_id: str, job_id: str | None = None) -> list[Call]:
        """The calls made for `item_id` (of job `job_id` only, when given), in order."""
        return [
            call for call in self.calls if call.item_id == item_id and job_id in (None, call.job_id)
        ]

    async def generate(self, request: GenerateRequest) -> GeneratedImage:
        """Record the call, wait `latency_s`, then give this attempt's scripted outcome (a 429 at
        once instead, when `max_concurrent` calls are under way)."""
        at = asyncio.get_running_loop().time()
        refs = tuple(ref.data for ref in request.references)
        call = Call(request.item_id, request.attempt, request.job_id, at, request.prompt, refs)
        self.calls.append(call)
        outcomes = self.script.get(request.item_id, ())
        index = len(self.calls_for(request.item_id, request.job_id)) - 1
        outcome = outcomes[index] if index < len(outcomes) else "ok"
        if self.max_concurrent is not None and self.under_way >= self.max_concurrent:
            raise RateLimitedError("over the concurrency cap", retry_after=self.cap_retry_after_s)
        self.under_way += 1
        self.peak = max(self.peak, self.under_way)
        try:
            return await self._answer(request, outcome)
        finally:
            self.under_way -= 1

    async def _answer(self, request: GenerateRequest, outcome: Outcome) -> GeneratedImage:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
            for _ in range(3):
                await asyncio.sleep(0)
        if isinstance(outcome, ProviderError):
            raise outcome
        if outcome == "hang":
            await asyncio.Event().wait()
        if outcome == "bad":
            return GeneratedImage(data=b"<html>oops</html>", mime_type="image/png", model="s")
        if outcome == "held":
            await self.gate.wait()
        if self.on_answer is not None:
            asyncio.get_running_loop().call_soon(self.on_answer)
        data = self.images.get(request.item_id, self.image)
        return GeneratedImage(data=data, mime_type="image/png", model="s", cost_usd=0.01)

    async def aclose(self) -> None:
        """Nothing to release."""
        return None


def make_spec(
    count: int = 3, *, key: str = "test-key", prefix: str = "i", **limits: object
) -> JobSpec:
    """A spec of `count` items (`{prefix}0`, `{prefix}1`, ...) for the `scripted` provider, with
    a 600 s timeout and the given `limits` (for example `concurrency=2`, `max_attempts=3`)."""
    return parse_spec(
        {
            "key": key,
            "provider": "scripted",
            "limits": {"timeout_s": 600, **limits},
            "output": {"format": "png", "thumbnail_px": 32},
            "items": [{"id": f"{prefix}{n}", "prompt": f"prompt {n}"} for n in range(count)],
        },
        "test",
    )


async def next_event(
    job: JobHandle, wanted: Callable[[Event], bool], *, after: int = 0, within_s: float = 60.0
) -> Event:
    """The job's first event after seq `after` that `wanted` accepts (TimeoutError if none comes
    within `within_s` of loop time)."""
    async with asyncio.timeout(within_s), aclosing(job.events(after=after)) as events:
        async for event in events:
            if wanted(event):
                return event
    raise AssertionError("the event stream ended")  # pragma: no cover (it never ends)

"""One contract, three providers: `mock` directly, `openai` and `gemini` over real loopback HTTP
against the fake server (the real SDK and aiohttp, no transport mocks)."""

from __future__ import annotations

import asyncio
import importlib
import io
from typing import Any

import pytest
from PIL import Image

from orchestrator.errors import (
    AuthError,
    BadResponseError,
    ContentRejectedError,
    InvalidRequestError,
    RateLimitedError,
    UnavailableError,
)
from orchestrator.imaging import inspect_image
from orchestrator.providers.base import Provider, Reference
from orchestrator.testing.fakeserver import FakeServer

from .conftest import BuildProvider, reference, request

PROVIDERS = ["mock", "openai", "gemini"]
CORRUPTIONS = ["rate_malformed_json", "rate_truncated_b64", "rate_not_image"]


class Harness:
    """Builds one provider with faults, said in the fake server's words (the mock's for mock)."""

    def __init__(self, name: str, fake: FakeServer, build: BuildProvider) -> None:
        self.name, self.fake, self._build = name, fake, build

    @property
    def http(self) -> bool:
        return self.name != "mock"

    def provider(self, **faults: Any) -> Provider:
        if not self.http:
            options: dict[str, Any] = {"latency_mean_s": 0.0}
            for fault, value in faults.items():
                options["rate_bad_bytes" if fault in CORRUPTIONS else fault] = value
            return self._build("mock", options=options)
        self.fake.configure(**faults)
        return self._build(self.name, self.fake)


@pytest.fixture(params=PROVIDERS)
def harness(request: pytest.FixtureRequest, fake: FakeServer, build: BuildProvider) -> Harness:
    return Harness(request.param, fake, build)


async def test_success_returns_an_image_of_the_asked_size(harness: Harness) -> None:
    provider = harness.provider()
    ask = request("a lighthouse at dusk", size="1024x1024")
    provider.check(ask)
    image = await provider.generate(ask)
    with Image.open(io.BytesIO(image.data)) as decoded:
        assert decoded.size == (1024, 1024)
        assert Image.MIME[str(decoded.format)] == image.mime_type
    assert image.model == getattr(provider, "model", image.model)
    if harness.http:
        assert harness.fake.stats.successes == {"a lighthouse at dusk": 1}
        assert harness.fake.stats.log[0]["model"] == image.model


async def test_references_reach_the_provider(harness: Harness) -> None:
    provider = harness.provider()
    assert provider.capabilities.supports_references
    refs = (reference("ref-0.png", (200, 30, 30)), reference("ref-1.png", (30, 30, 200)))
    plain = await provider.generate(request("a knight", size="1024x1024"))
    with_refs = await provider.generate(request("a knight", size="1024x1024", references=refs))
    assert with_refs.data != plain.data, "the references must change the picture"
    if harness.http:
        assert harness.fake.stats.references["a knight"] == [0, 2]


async def test_rate_limit_carries_the_servers_retry_after(harness: Harness) -> None:
    provider = harness.provider(rate_429=1.0, retry_after_s=2.0)
    with pytest.raises(RateLimitedError) as caught:
        await provider.generate(request())
    assert caught.value.retry_after == 2.0
    assert caught.value.retryable


async def test_server_error_is_unavailable_and_retryable(harness: Harness) -> None:
    provider = harness.provider(rate_500=1.0)
    with pytest.raises(UnavailableError) as caught:
        await provider.generate(request())
    assert caught.value.retryable


async def test_content_rejection_is_permanent(harness: Harness) -> None:
    provider = harness.provider(reject_pattern="forbidden")
    with pytest.raises(ContentRejectedError) as caught:
        await provider.generate(request("a forbidden door"))
    assert not caught.value.retryable
    assert (await provider.generate(request("an open door"))).data


async def test_unusable_reference_is_an_invalid_request(harness: Harness) -> None:
    provider = harness.provider()
    broken = Reference(data=b"this is no picture" * 8, mime_type="image/png", name="ref-0.png")
    with pytest.raises(InvalidRequestError) as caught:
        await provider.generate(request("a knight", references=(broken,)))
    assert not caught.value.retryable


@pytest.fixture(params=[name for name in PROVIDERS if name != "mock"])
def keyed_harness(
    request: pytest.FixtureRequest, fake: FakeServer, build: BuildProvider
) -> Harness:
    """The providers that take a key (the mock takes none)."""
    return Harness(request.param, fake, build)


async def test_wrong_key_is_auth_and_stops_further_calls(keyed_harness: Harness) -> None:
    harness = keyed_harness
    provider = harness.provider(require_key="sk-the-right-key-0123456789")
    with pytest.raises(AuthError):
        await provider.generate(request("first"))
    with pytest.raises(AuthError):
        await provider.generate(request("second"))
    assert harness.fake.stats.requests == 1, "a refused key must not be tried again"


async def test_hang_is_cut_by_the_callers_timeout(harness: Harness) -> None:
    provider = harness.provider(rate_hang=1.0)
    if harness.http:  # the SDK's import (a second or more on a busy machine) is not what hangs
        await importlib.import_module(type(provider).__module__).SDK.ready()
    call = asyncio.ensure_future(provider.generate(request("stuck")))
    if harness.http:  # the clock starts once the server holds the request: a busy machine's
        async with asyncio.timeout(10):  # first request may take longer than 0.3 s to arrive
            while harness.fake.stats.requests < 1 and not call.done():
                await asyncio.sleep(0.01)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await call
    if harness.http:
        async with asyncio.timeout(5):
            while harness.fake.stats.abandoned < 1:
                await asyncio.sleep(0.01)
        harness.fake.configure(rate_hang=0.0)
        assert (await provider.generate(request("unstuck"))).data


@pytest.mark.parametrize("corruption", CORRUPTIONS)
async def test_corrupt_payload_never_passes_as_an_image(harness: Harness, corruption: str) -> None:
    provider = harness.provider(**{corruption: 1.0})
    if harness.http:
        with pytest.raises(BadResponseError) as caught:
            await provider.generate(request())
        assert caught.value.retryable
    else:
        image = await provider.generate(request())
        with pytest.raises(BadResponseError):
            inspect_image(image.data)

"""Answers no real image API sends, from a server on 127.0.0.1 posing as Gemini or as OpenAI
(through the real `openai` SDK): a body that never ends, one far too large, JSON nested past the
parser. Each is a clear bad response for
the item, read with a cap, never an internal error or the machine's memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from orchestrator.errors import BadResponseError
from orchestrator.providers.base import ProviderConfig
from orchestrator.providers.gemini import GeminiProvider
from orchestrator.providers.http import MAX_ANSWER_BYTES
from orchestrator.providers.openai import OpenAIProvider

from .conftest import request

Answer = Callable[[web.Request], web.StreamResponse | None]


async def endless(request: web.Request) -> web.StreamResponse:
    reply = web.StreamResponse(headers={"Content-Type": "application/json"})
    await reply.prepare(request)
    chunk = b"A" * (1 << 20)
    while True:  # until the client stops reading
        await reply.write(chunk)


async def huge(request: web.Request) -> web.Response:
    return web.Response(body=b" " * (MAX_ANSWER_BYTES + 10), content_type="application/json")


async def nested(request: web.Request) -> web.Response:
    return web.Response(body=b"[" * 200_000 + b"]" * 200_000, content_type="application/json")


async def huge_without_length(request: web.Request) -> web.StreamResponse:
    reply = web.StreamResponse(headers={"Content-Type": "application/json"})
    await reply.prepare(request)
    for _ in range(MAX_ANSWER_BYTES // (1 << 20) + 2):
        await reply.write(b" " * (1 << 20))
    await reply.write_eof()
    return reply


@asynccontextmanager
async def posing(
    answer: Callable[..., object], name: str = "gemini"
) -> AsyncIterator[GeminiProvider | OpenAIProvider]:
    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)  # type: ignore[arg-type]
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    provider: GeminiProvider | OpenAIProvider
    if name == "gemini":
        env = {"GEMINI_API_KEY": "k-test", "GEMINI_BASE_URL": base}
        provider = GeminiProvider(ProviderConfig(env=env))
    else:
        env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": f"{base}/v1"}
        provider = OpenAIProvider(ProviderConfig(env=env, model="gpt-image-1"))
    try:
        yield provider
    finally:
        await provider.aclose()
        await runner.cleanup()


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (endless, "the answer is larger than 72 MB; not read further"),
        (huge, "the answer is larger than 72 MB; not read further"),
        (nested, "the response is not valid JSON"),
    ],
)
async def test_a_hostile_answer_is_a_bad_response(answer: Callable[..., object], said: str) -> None:
    async with posing(answer) as provider:
        with pytest.raises(BadResponseError) as caught:
            await provider.generate(request())
    assert str(caught.value) == f"gemini: {said}"


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (endless, "the answer is larger than 72 MB; not read further"),
        (huge, "the answer is larger than 72 MB; not read further"),
        (huge_without_length, "the answer is larger than 72 MB; not read further"),
        (nested, "the response is not valid JSON of the expected shape"),
    ],
)
async def test_the_openai_sdk_reads_a_hostile_answer_with_a_cap(
    answer: Callable[..., object], said: str
) -> None:
    async with posing(answer, "openai") as provider:
        with pytest.raises(BadResponseError) as caught:
            await provider.generate(request())
    assert str(caught.value) == f"openai: {said}"


def test_the_answer_cap_fits_the_largest_image_and_little_more() -> None:
    """The body of an answer is held while it is read: the cap bounds what one hostile answer
    costs in memory (the trials' figure is under 100 MB), yet a largest allowed image, in base64
    inside its JSON, still fits."""
    from orchestrator.imaging import MAX_IMAGE_BYTES

    assert MAX_IMAGE_BYTES * 4 / 3 + (1 << 20) < MAX_ANSWER_BYTES < 80 * (1 << 20)

"""Answers no real image API sends, from a server on 127.0.0.1 posing as Gemini: a body that
never ends, one far too large, JSON nested past the parser. Each is a clear bad response for
the item, read with a cap, never an internal error or the machine's memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from orchestrator.errors import BadResponseError
from orchestrator.providers.base import ProviderConfig
from orchestrator.providers.gemini import MAX_ANSWER_BYTES, GeminiProvider

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


@asynccontextmanager
async def gemini_posing(answer: Callable[..., object]) -> AsyncIterator[GeminiProvider]:
    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)  # type: ignore[arg-type]
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    env = {"GEMINI_API_KEY": "k-test", "GEMINI_BASE_URL": f"http://127.0.0.1:{port}"}
    provider = GeminiProvider(ProviderConfig(env=env))
    try:
        yield provider
    finally:
        await provider.aclose()
        await runner.cleanup()


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (endless, "the answer is larger than 96 MB; not read further"),
        (huge, "the answer is larger than 96 MB; not read further"),
        (nested, "the response is not valid JSON"),
    ],
)
async def test_a_hostile_answer_is_a_bad_response(answer: Callable[..., object], said: str) -> None:
    async with gemini_posing(answer) as provider:
        with pytest.raises(BadResponseError) as caught:
            await provider.generate(request())
    assert str(caught.value) == f"gemini: {said}"

"""Images the OpenAI API answers with a URL are fetched whole, and a failed fetch is retried
rather than paid for again."""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from PIL import Image

from orchestrator.providers import openai as openai_provider
from orchestrator.providers.base import ProviderConfig
from orchestrator.providers.openai import OpenAIProvider


def big_png() -> bytes:
    noise = random.Random(3).randbytes(1200 * 900 * 3)  # noise does not compress: ~3 MB
    buffer = io.BytesIO()
    Image.frombytes("RGB", (1200, 900), noise).save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


@pytest.fixture
async def image_host() -> AsyncIterator[tuple[str, list[int], bytes]]:
    """Serves one big PNG in small chunks; the first request gets a 503."""
    data = big_png()
    statuses: list[int] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        if not statuses:
            statuses.append(503)
            return web.Response(status=503)
        statuses.append(200)
        reply = web.StreamResponse(headers={"Content-Type": "image/png"})
        await reply.prepare(request)
        for start in range(0, len(data), 32 * 1024):
            await reply.write(data[start : start + 32 * 1024])
            await asyncio.sleep(0)
        await reply.write_eof()
        return reply

    app = web.Application()
    app.router.add_get("/img.png", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/img.png", statuses, data
    finally:
        await runner.cleanup()


async def test_a_big_image_url_is_fetched_whole_after_a_failed_fetch(
    image_host: tuple[str, list[int], bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, statuses, data = image_host
    monkeypatch.setattr(openai_provider, "DOWNLOAD_PAUSES_S", (0.01, 0.01))
    provider = OpenAIProvider(ProviderConfig(model="dall-e-3", env={"OPENAI_API_KEY": "sk-x"}))
    try:
        fetched = await provider._download(url)
    finally:
        await provider.aclose()
    assert statuses == [503, 200]  # the fetch was tried again, not the paid generation
    assert len(data) > 1_000_000
    assert fetched == data

"""A hostile image API on 127.0.0.1, posing as OpenAI Images (`/v1/images/generations`) and
as Gemini (`/v1beta/models/{model}:generateContent`), on a thread of its own. What it answers
depends on a word in the prompt:

- `good`: a small real PNG;
- `truncated`: the PNG's base64 cut off half-way;
- `notimage`: valid base64 of bytes that are no image;
- `bomb`: a small compressed PNG that declares 20000 x 20000 pixels (400 megapixels);
- `huge`: a 500 MB body with its Content-Length (streamed, never held here);
- `endless`: a body without a length that never ends;
- `deep`: JSON nested 200,000 levels.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from ._serve import png

__all__ = ["KINDS", "bomb_png", "hostile_api"]

KINDS = ("truncated", "notimage", "bomb", "huge", "endless", "deep")
HUGE_BYTES = 500 * 1024 * 1024
CHUNK = b"A" * (1 << 20)


def bomb_png(side: int = 20000) -> bytes:
    """A 1-bit PNG of `side` x `side` pixels, all zero: a few tens of kilobytes that declare
    (and decode to) `side`^2 pixels. Made row by row, never whole in memory."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def _image_b64(kind: str, bomb: bytes) -> str:
    if kind == "truncated":
        text = base64.b64encode(png(64)).decode()
        return text[: len(text) // 2 + 1]
    if kind == "notimage":
        return base64.b64encode(b"these bytes are no image at all " * 64).decode()
    if kind == "bomb":
        return base64.b64encode(bomb).decode()
    return base64.b64encode(png(64)).decode()


def _wrap(image: str, gemini: bool) -> dict[str, Any]:
    if gemini:
        part = {"inlineData": {"mimeType": "image/png", "data": image}}
        return {"candidates": [{"content": {"parts": [part]}, "finishReason": "STOP"}]}
    return {"created": 1, "data": [{"b64_json": image}]}


async def _stream(request: web.Request, length: int | None) -> web.StreamResponse:
    headers = {"Content-Type": "application/json"}
    if length is not None:
        headers["Content-Length"] = str(length)
    reply = web.StreamResponse(headers=headers)
    await reply.prepare(request)
    sent = 0
    try:
        while length is None or sent < length:
            piece = CHUNK if length is None else CHUNK[: length - sent]
            await reply.write(piece)
            sent += len(piece)
    except (ConnectionError, asyncio.CancelledError):
        pass  # the client stopped reading: what it should do
    return reply


def _prompt(body: dict[str, Any], gemini: bool) -> str:
    if gemini:
        parts = body.get("contents", [{}])[0].get("parts", [])
        return " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
    return str(body.get("prompt", ""))


def _app(bomb: bytes, asked: list[str]) -> web.Application:
    async def answer(request: web.Request) -> web.StreamResponse:
        gemini = "/models/" in request.path
        prompt = _prompt(await request.json(), gemini)
        kind = next((k for k in KINDS if k in prompt), "good")
        asked.append(kind)
        if kind == "huge":
            return await _stream(request, HUGE_BYTES)
        if kind == "endless":
            return await _stream(request, None)
        if kind == "deep":
            return web.Response(
                body=b"[" * 200_000 + b"]" * 200_000, content_type="application/json"
            )
        return web.json_response(_wrap(_image_b64(kind, bomb), gemini))

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/images/generations", answer)
    app.router.add_post("/v1beta/models/{target}", answer)
    return app


@contextmanager
def hostile_api() -> Iterator[tuple[str, list[str]]]:
    """The server's base URL and the list of answer kinds it gave, while it runs."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asked: list[str] = []

    async def start() -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(_app(bomb_png(), asked))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    runner, port = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    try:
        yield f"http://127.0.0.1:{port}", asked
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()

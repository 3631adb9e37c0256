"""Answers read with a cap, so an endless or huge body is a bad response, not the machine's
memory: `read_at_most` for an aiohttp response (Gemini, image and reference URLs), and an httpx
transport for the OpenAI SDK that stops reading a body once it passes the size.

```python
client = openai.AsyncOpenAI(http_client=capped_client(MAX_ANSWER_BYTES), ...)
```

The SDK reads a whole body before it parses it; the cap is checked on the `Content-Length`
header first, then while the bytes arrive. Going over raises `AnswerTooLarge`, which the SDK
wraps as a connection error (`translate` looks at its cause). httpx is imported by the caller's
SDK already; this module takes the one the SDK was built on (`httpx`, or `httpx2` in newer
releases) when a client is made, untyped for that reason.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["AnswerTooLarge", "capped_client", "read_at_most"]


class AnswerTooLarge(Exception):
    """An answer's body passed the cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {limit // (1024 * 1024)} MB; not read further")
        self.limit = limit


async def read_at_most(response: Any, limit: int) -> bytes:
    """An aiohttp response's body, or `AnswerTooLarge` as soon as it passes `limit` bytes: its
    `Content-Length` is checked first, then the bytes as they arrive, so a huge or endless body
    is never held whole."""
    if (response.content_length or 0) > limit:
        raise AnswerTooLarge(limit)
    body = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > limit:
            raise AnswerTooLarge(limit)
    return bytes(body)


def capped_client(limit: int, **options: Any) -> Any:
    """The OpenAI SDK's default async client (its timeouts and pool limits), over a transport
    that reads at most `limit` bytes of any answer."""
    import openai

    client_class = openai.DefaultAsyncHttpxClient.__mro__[1]  # the AsyncClient it extends
    httpx: Any = importlib.import_module(client_class.__module__.split(".")[0])
    return openai.DefaultAsyncHttpxClient(transport=_capped_transport(httpx, limit), **options)


def _capped_transport(httpx: Any, limit: int) -> Any:
    """An httpx transport whose answers are refused past `limit` bytes: by their
    `Content-Length` first, then while the body is read (`httpx` is the SDK's own)."""
    stream_class = _capped_stream_class(httpx, limit)

    class CappedTransport(httpx.AsyncBaseTransport):  # type: ignore[misc]
        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport()

        async def handle_async_request(self, request: Any) -> Any:
            response = await self.inner.handle_async_request(request)
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
                await response.aclose()
                raise AnswerTooLarge(limit)
            assert isinstance(response.stream, httpx.AsyncByteStream)
            response.stream = stream_class(response.stream)
            return response

        async def aclose(self) -> None:
            await self.inner.aclose()

    return CappedTransport()


def _capped_stream_class(httpx: Any, limit: int) -> Any:
    """The class of an answer's body that raises `AnswerTooLarge` once it passes `limit`."""

    class CappedStream(httpx.AsyncByteStream):  # type: ignore[misc]
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __aiter__(self) -> AsyncIterator[bytes]:
            total = 0
            async for chunk in self.inner:
                total += len(chunk)
                if total > limit:
                    raise AnswerTooLarge(limit)
                yield chunk

        async def aclose(self) -> None:
            await self.inner.aclose()

    return CappedStream

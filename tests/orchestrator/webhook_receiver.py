"""A real Standard Webhooks receiver for tests: an aiohttp server on 127.0.0.1 (a free port)
that checks every request with the independent `standardwebhooks` package.

`answers` scripts the replies in turn (a status code, or `hang`: no answer until the test ends);
requests beyond the script get 204. Every request is recorded, verified or not.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def new_secret() -> str:
    """A fresh Standard Webhooks secret: `whsec_` and base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answer: int | str
    payload: Any = None
    """The verified, parsed body; None when verification failed."""
    error: str | None = None
    """Why verification failed."""

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def type(self) -> str:
        return str(json.loads(self.body)["type"])


@dataclass
class Receiver:
    secret: str
    answers: list[int | str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the test ends: hanging requests end then."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        index = len(self.received)
        answer = self.answers[index] if index < len(self.answers) else 204
        got = Received(headers, body, answer)
        try:
            got.payload = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError as error:
            got.error = str(error)
        self.received.append(got)
        self.arrived.set()
        if answer == "hang":
            await self.release.wait()
            return web.Response(status=204)
        assert isinstance(answer, int)
        return web.Response(status=answer)

    def of_type(self, kind: str) -> list[Received]:
        return [got for got in self.received if got.type == kind]


@asynccontextmanager
async def receiver(secret: str, answers: list[int | str] | None = None) -> AsyncIterator[Receiver]:
    """A running receiver; stopped (hanging requests released) when the block ends."""
    hook = Receiver(secret, list(answers or []))
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    hook.url = f"http://{host}:{port}/hook"
    try:
        yield hook
    finally:
        hook.release.set()
        await runner.cleanup()

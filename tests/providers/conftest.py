"""Fixtures for provider tests: fake servers that always close, and providers built against them.

Providers talk real HTTP over loopback to the fake server, through the real SDK (openai) or
aiohttp (gemini); nothing is mocked below the provider.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from PIL import Image

from orchestrator.providers.base import (
    GenerateRequest,
    Provider,
    ProviderConfig,
    ProviderFactory,
    Reference,
)
from orchestrator.providers.gemini import GeminiProvider
from orchestrator.providers.mock import MockProvider
from orchestrator.providers.openai import OpenAIProvider
from orchestrator.testing.fakeserver import FakeServer, FakeServerOptions, start_fake_server

CANARY = "sk-canary-Zq7xW3pL9mN2vB8kR4tY6uH1"
"""A key that must never show up in any message, repr or metadata."""

StartServer = Callable[..., Awaitable[FakeServer]]
BuildProvider = Callable[..., Provider]


def png(width: int = 64, height: int = 64, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def reference(name: str = "ref-0.png", colour: tuple[int, int, int] = (200, 30, 30)) -> Reference:
    return Reference(data=png(colour=colour), mime_type="image/png", name=name)


def request(prompt: str = "a lighthouse at dusk", **fields: Any) -> GenerateRequest:
    return GenerateRequest(
        job_id="job-1", item_id=fields.pop("item_id", "item-1"), prompt=prompt, **fields
    )


def env_for(name: str, server: FakeServer, key: str = CANARY) -> dict[str, str]:
    """The environment a provider reads its key and base URL from, pointing at `server`."""
    if name == "openai":
        return {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": f"{server.url}/v1"}
    return {"GEMINI_API_KEY": key, "GEMINI_BASE_URL": server.url}


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """`await start_server(**options)`: a fake server closed at the end of the test."""
    servers: list[FakeServer] = []

    async def start(**options: Any) -> FakeServer:
        server = await start_fake_server(FakeServerOptions(**options))
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def fake(start_server: StartServer) -> FakeServer:
    return await start_server()


@pytest.fixture
async def build() -> AsyncIterator[BuildProvider]:
    """`build(name, server=..., model=..., options=..., key=...)`: a provider closed afterwards."""
    providers: list[Provider] = []

    def make(
        name: str,
        server: FakeServer | None = None,
        *,
        model: str | None = None,
        options: dict[str, Any] | None = None,
        key: str = CANARY,
    ) -> Provider:
        env = env_for(name, server, key) if server is not None else {}
        config = ProviderConfig(model=model, options=options or {}, env=env)
        factories: dict[str, ProviderFactory] = {
            "mock": MockProvider,
            "openai": OpenAIProvider,
            "gemini": GeminiProvider,
        }
        provider = factories[name](config)
        providers.append(provider)
        return provider

    yield make
    for provider in providers:
        await provider.aclose()

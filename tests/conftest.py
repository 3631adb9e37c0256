"""Fixtures shared by the whole suite: a fake image API that CLI subprocesses can reach."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from orchestrator.testing.fakeserver import FakeServer, FakeServerOptions, start_fake_server

ServeFakeApi = Callable[..., FakeServer]


@pytest.fixture(autouse=True, scope="session")
def _no_implicit_event_loop() -> None:
    """No event loop set for synchronous tests: looptime's plugin asks the policy for one before
    every test, which on Python 3.11 creates a loop that nobody closes (a ResourceWarning)."""
    asyncio.set_event_loop(None)


class _ServerThread:
    """A fake server on its own event loop in a thread, for tests whose code under test runs in
    subprocesses (the CLI) while the test itself is synchronous."""

    def __init__(self, options: FakeServerOptions) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.server: FakeServer = self._call(start_fake_server(options))

    def _call(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=30)

    def close(self) -> None:
        self._call(self.server.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


@pytest.fixture
def serve_fake_api() -> Iterator[ServeFakeApi]:
    """`serve_fake_api(**options)`: a fake OpenAI / Gemini API on 127.0.0.1, closed afterwards."""
    threads: list[_ServerThread] = []

    def serve(**options: Any) -> FakeServer:
        thread = _ServerThread(FakeServerOptions(**options))
        threads.append(thread)
        return thread.server

    yield serve
    for thread in threads:
        thread.close()


def fake_api_env(server: FakeServer, key: str = "sk-test-fake-key") -> dict[str, str]:
    """Variables that point both real providers at `server`."""
    return {
        "OPENAI_API_KEY": key,
        "OPENAI_BASE_URL": f"{server.url}/v1",
        "GEMINI_API_KEY": key,
        "GEMINI_BASE_URL": server.url,
    }

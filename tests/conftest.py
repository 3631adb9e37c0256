"""Fixtures shared by the whole suite: a fake image API that CLI subprocesses can reach."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from orchestrator.testing.fakeserver import FakeServer, FakeServerOptions
from orchestrator.testing.fakeserver.thread import ServerThread

ServeFakeApi = Callable[..., FakeServer]


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: half as many workers again as CPUs. Most tests wait on subprocesses, servers
    and sleeps, so one worker per CPU leaves the CPUs idle a third of the time (two cores: 7:11
    with two workers, 6:00 with three)."""
    return max(2, (os.cpu_count() or 1) * 3 // 2)


@pytest.fixture(autouse=True, scope="session")
def _no_implicit_event_loop() -> None:
    """No event loop set for synchronous tests: looptime's plugin asks the policy for one before
    every test, which on Python 3.11 creates a loop that nobody closes (a ResourceWarning)."""
    asyncio.set_event_loop(None)


@pytest.fixture
def serve_fake_api() -> Iterator[ServeFakeApi]:
    """`serve_fake_api(**options)`: a fake OpenAI / Gemini API on 127.0.0.1, closed afterwards."""
    threads: list[ServerThread] = []

    def serve(**options: Any) -> FakeServer:
        thread = ServerThread(FakeServerOptions(**options))
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

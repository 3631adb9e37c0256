"""`ServerThread`: a fake server on its own event loop in a thread.

For code that is not async itself but drives subprocesses that talk to the server (the CLI
tests, the speed benchmark): the server answers on its own loop while the caller blocks.

    with ServerThread(FakeServerOptions(latency_s=0.4)) as thread:
        run_cli(env={"OPENAI_BASE_URL": thread.server.url + "/v1", ...})
        log = thread.call(thread.log())
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from .app import FakeServer, start_fake_server
from .options import FakeServerOptions

__all__ = ["ServerThread"]

T = TypeVar("T")
CALL_TIMEOUT_S = 30.0


class ServerThread:
    """A started fake server (`server`) whose loop runs in a daemon thread until `close()`."""

    def __init__(self, options: FakeServerOptions) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.server: FakeServer = self.call(start_fake_server(options))

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the server's loop and return its result (waits at most 30 s)."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=CALL_TIMEOUT_S)

    async def log(self) -> list[dict[str, Any]]:
        """A copy of the server's request log, taken on its loop (pass to `call`)."""
        return [dict(entry) for entry in self.server.stats.log]

    def close(self) -> None:
        """Close the server, stop its loop and join the thread."""
        self.call(self.server.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=CALL_TIMEOUT_S)
        self._loop.close()

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

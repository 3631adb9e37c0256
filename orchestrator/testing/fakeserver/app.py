"""The fake image API server: its aiohttp application, the handle tests hold, and the CLI loop.

`start_fake_server()` binds 127.0.0.1 on a free port and returns a `FakeServer` (use it as
`async with`); `serve_forever()` runs one in the foreground for `imagebatch fake-server`.
`GET /fake/stats` shows the counts as JSON.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from aiohttp import web

from . import gemini_api, openai_api
from .options import FakeServerOptions
from .state import STATE, FakeStats, ServerState

__all__ = ["FakeServer", "build_app", "serve_forever", "start_fake_server"]

SHUTDOWN_TIMEOUT_S = 0.5
MAX_BODY_BYTES = 64 * 1024 * 1024


async def _stats(request: web.Request) -> web.Response:
    stats = request.app[STATE].stats
    return web.json_response(
        {
            "requests": stats.requests,
            "by_prompt": dict(stats.by_prompt),
            "by_endpoint": dict(stats.by_endpoint),
            "successes": dict(stats.successes),
            "faults": dict(stats.faults),
            "abandoned": stats.abandoned,
            "peak_concurrent": stats.peak_concurrent,
            "duplicates": stats.duplicates(),
        }
    )


def build_app(state: ServerState) -> web.Application:
    """The application, with every fake endpoint, sharing `state`."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[STATE] = state
    app.add_routes([*openai_api.routes(), *gemini_api.routes(), web.get("/fake/stats", _stats)])
    return app


class FakeServer:
    """A running fake server. Close it or leave its `async with`; if neither happens, it closes
    when its event loop shuts down (`asyncio.run` cancels the task that holds it open)."""

    def __init__(self, state: ServerState, keeper: asyncio.Task[None], url: str) -> None:
        self._state = state
        self._keeper = keeper
        self.url = url
        """`http://127.0.0.1:PORT`; OpenAI clients want `url + "/v1"`."""

    @property
    def options(self) -> FakeServerOptions:
        return self._state.options

    def configure(self, **changes: Any) -> FakeServerOptions:
        """Change faults or latency from now on, e.g. `configure(rate_500=0.2)`. Validated."""
        merged = {**self._state.options.model_dump(), **changes}
        self._state.options = FakeServerOptions.model_validate(merged)
        return self._state.options

    @property
    def stats(self) -> FakeStats:
        return self._state.stats

    @property
    def counts(self) -> Mapping[str, int]:
        """Requests per prompt (every request, whatever its answer)."""
        return self._state.stats.by_prompt

    async def close(self) -> None:
        """Wake hanging requests and stop serving. Safe to call twice."""
        self._state.closing.set()
        await asyncio.wait({self._keeper})

    async def __aenter__(self) -> FakeServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def start_fake_server(
    options: FakeServerOptions | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> FakeServer:
    """Start a fake server on `host` (port 0: a free one) in the running loop."""
    state = ServerState(options or FakeServerOptions())
    runner = web.AppRunner(
        build_app(state),
        handler_cancellation=True,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        access_log=None,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
    except BaseException:
        await runner.cleanup()
        raise
    keeper = asyncio.create_task(_serve_until_closed(runner, state), name="fake-server")
    return FakeServer(state, keeper, f"http://{bound_host}:{bound_port}")


async def _serve_until_closed(runner: web.AppRunner, state: ServerState) -> None:
    """Hold the server open until `close()`, or until the loop cancels this task at its end."""
    try:
        await state.closing.wait()
    finally:
        state.closing.set()
        await runner.cleanup()


async def _serve(host: str, port: int, options: FakeServerOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with await start_fake_server(options, host=host, port=port) as server:
        print(f"fake image API on {server.url}", flush=True)
        print(f"  OPENAI_BASE_URL={server.url}/v1   GEMINI_BASE_URL={server.url}", flush=True)
        print(f"  stats: {server.url}/fake/stats   stop: Ctrl-C", flush=True)
        await stop.wait()
        stats = server.stats
        print(f"served {stats.requests} requests, {sum(stats.successes.values())} images")


def serve_forever(host: str, port: int, options: FakeServerOptions) -> None:
    """Run a fake server in the foreground until SIGINT or SIGTERM."""
    asyncio.run(_serve(host, port, options))

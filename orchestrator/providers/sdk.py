"""A provider's SDK, imported in a background thread so that nothing waits for it twice.

Importing the OpenAI SDK takes about a second. A provider calls `start()` when it is built (the
CLI builds it to check the spec, before it opens the journal), the import runs in a daemon
thread while the spec is checked and the journal opened, and the first request awaits
`ready()`, which waits off the event loop. Commands that build no provider (`--help`,
`status`, `list`, `estimate`) never import an SDK.

A failed import (the package is missing or broken) is a `ConfigError` that says which package
to install; `start()` already tells a missing package apart cheaply, without importing it.

`prepare`, if given, runs in the same thread once the import is done, and what it returns is
handed to the first `take_prepared()`: the OpenAI provider builds its HTTP client there (its
transport's own imports and TLS set-up, about 0.2 s), so the first request does not wait for it
on the event loop. A `prepare` that fails only costs that head start.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from types import ModuleType
from typing import Any

from ..errors import ConfigError

__all__ = ["BackgroundImport"]


class BackgroundImport:
    """One module, imported at most once, in a thread started by the first `start()`."""

    def __init__(
        self,
        module: str,
        *,
        package: str,
        provider: str,
        prepare: Callable[[ModuleType], Any] | None = None,
    ) -> None:
        self.module = module
        self.package = package
        """What `pip install` needs, for the message when the module is missing."""
        self.provider = provider
        self._prepare = prepare
        self._prepared: Any = None
        self._future: Future[ModuleType] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        future = self._future
        state = "not started" if future is None else "done" if future.done() else "importing"
        return f"BackgroundImport({self.module!r}, {state})"

    def start(self) -> None:
        """Begin the import unless it has begun; raise `ConfigError` if the module is missing."""
        with self._lock:
            if self._future is not None:
                return
            if self.module not in sys.modules and importlib.util.find_spec(self.module) is None:
                raise self._missing(f"no module named {self.module!r}")
            future: Future[ModuleType] = Future()
            future.set_running_or_notify_cancel()  # a waiter's cancellation cannot cancel it
            self._future = future
        if self.module in sys.modules and self._prepare is None:
            future.set_result(sys.modules[self.module])
            return
        name = f"import {self.module}"
        threading.Thread(target=self._load, args=(future,), name=name, daemon=True).start()

    async def ready(self) -> ModuleType:
        """The module, once imported; waits off the event loop (starting the import if need be)."""
        self.start()
        assert self._future is not None
        try:
            if self._future.done():
                return self._future.result()
            return await asyncio.wrap_future(self._future)
        except ImportError as error:
            raise self._missing(str(error)) from None

    def take_prepared(self) -> Any:
        """What `prepare` made, once (None after that, or if it failed or has not run)."""
        with self._lock:
            prepared, self._prepared = self._prepared, None
        return prepared

    def _load(self, future: Future[ModuleType]) -> None:
        try:
            module = importlib.import_module(self.module)
        except BaseException as error:  # handed to whoever awaits `ready()`
            future.set_exception(error)
            return
        if self._prepare is not None:
            try:
                prepared = self._prepare(module)
            except Exception:  # the caller builds it itself, as if there were no `prepare`
                prepared = None
            with self._lock:
                self._prepared = prepared
        future.set_result(module)

    def _missing(self, why: str) -> ConfigError:
        return ConfigError(
            f"provider: {self.provider!r} needs the {self.package!r} package, which cannot be "
            f"imported ({why}); install it with `pip install {self.package}`"
        )

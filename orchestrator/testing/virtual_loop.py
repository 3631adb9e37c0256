"""`VirtualTimeLoop`: an asyncio event loop on a virtual clock that never really sleeps.

Whenever no callback is ready and no I/O is waiting, the loop's clock jumps straight to the next
timer, so an hour of pacing, backoff or cool-down runs in milliseconds and times compare exactly.
For code that waits on the loop's own clock (`loop.time()`, `loop.call_at`, `asyncio.sleep`),
such as the provider lanes. A loop where every task waits and no timer is set raises
`RuntimeError` ("deadlock") instead of hanging.

```python
with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
    runner.run(main())
```

or decorate an async pytest test with `@virtual_time` to run it (with its fixtures) on a fresh
one. (The looptime plugin does the same, but once installed it leaks an event loop from
synchronous tests elsewhere in a suite under pytest-asyncio 1.5.)
"""

from __future__ import annotations

import asyncio
import inspect
import selectors
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["START", "VirtualTimeLoop", "virtual_time"]

START = 1000.0
"""Where a `VirtualTimeLoop`'s clock starts unless told otherwise."""


class _JumpingSelector(selectors.DefaultSelector):
    """Polls without blocking; when nothing is ready, moves the loop's clock to the next timer."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:
            raise RuntimeError("deadlock: every task waits and no timer is set")
        self._loop.now += timeout
        self._loop.wake_ups += 1
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on a virtual clock that starts at `start` and never really sleeps."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        """The loop's clock (`time()`); moves only when the loop would otherwise sleep."""
        self.wake_ups = 0
        """How often the loop slept until a timer: once per timed wait, many times for a poller."""
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.now


def virtual_time(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test (with its fixtures) to completion on a fresh `VirtualTimeLoop`."""

    def run(*args: Any, **kwargs: Any) -> None:
        with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
            runner.run(test(*args, **kwargs))

    run.__name__, run.__qualname__, run.__doc__ = test.__name__, test.__qualname__, test.__doc__
    run.__signature__ = inspect.signature(test)  # type: ignore[attr-defined]
    return run

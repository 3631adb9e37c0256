"""`KernelTasks`: the tasks a notebook view runs on the kernel's event loop.

Each is kept until it ends (so none is collected while it runs) and can be started from any
thread: a widget's click may arrive on the loop's thread or on another one. The tasks that carry
out a click's request are counted apart, so a cell can wait until the clicks so far are answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ["KernelTasks"]


class KernelTasks:
    """Tasks on the loop that was running when this was made (the kernel's)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._answering: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """A task on the kernel's loop, kept until it ends."""
        task = self.loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def soon(self, work: Coroutine[Any, Any, Any], *, answering: bool = False) -> None:
        """`spawn` from wherever a click arrives: the loop's thread, or another one.
        `answering`: a click's request, which `answered` waits for."""
        try:
            here = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            here = False
        if here:
            self._spawn_request(work, answering)
        else:
            self.loop.call_soon_threadsafe(self._spawn_request, work, answering)

    async def answered(self) -> None:
        """Return once every click's request started so far has ended."""
        while self._answering:
            await asyncio.wait(set(self._answering))

    def cancel(self) -> None:
        """Cancel every task still running."""
        for task in list(self._tasks):
            task.cancel()

    def _spawn_request(self, work: Coroutine[Any, Any, Any], answering: bool) -> None:
        task = self.spawn(work)
        if answering:
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

"""What happens to an image after the provider answers: it is stored, then post-processed.

Storing is short and comes first (see `storing`): the image is written to `raw/` and recorded
before the attempt's slot takes a new paid request. Post-processing (resize, encode, thumbnail)
is its own stage with its own bounded workers: worker processes by default, so the CPU-heavy
part never competes with the event loop for the GIL. Small images (at most `SMALL_PIXELS`)
are post-processed in threads instead: their work is a fraction of a millisecond. (Images of
at most `storing.INLINE_PIXELS` are post-processed as they are stored.)
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .errors import BadResponseError
from .imaging import Processed, postprocess
from .spec import OutputSpec
from .storing import StoreWorkers
from .workers import start_worker_processes

__all__ = ["SMALL_PIXELS", "PostStage"]

SMALL_PIXELS = 256 * 256
"""Raw images of at most this many pixels are post-processed in a thread, not a process."""


class PostStage:
    """Post-processing workers shared by every job an orchestrator runs, and the workers that
    store paid images (`stores`: processes too, unless `processes` is False)."""

    def __init__(self, workers: int | None = None, *, processes: bool = True) -> None:
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.processes = processes
        self._pool: Executor | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        """Held while the pool starts (a few hundred ms for worker processes), in a thread."""
        self._threads_lock = threading.Lock()
        """Held for a moment by the loop: it must not wait for a pool that is starting."""
        self.stores = StoreWorkers(processes=processes)

    def _executor(self) -> Executor:
        """The pool, started if need be. Starting worker processes blocks (the fork server's
        start alone takes a few hundred ms), so the first call runs in a thread, not the loop."""
        with self._lock:
            if self._pool is None:
                if self.processes:
                    self._pool = start_worker_processes(self.workers)
                if self._pool is None:  # threads asked for, or no worker process could start
                    self.processes = False
                    self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="postprocess")
            return self._pool

    def _small_executor(self) -> Executor:
        """Threads for small images (the pool itself when it is made of threads)."""
        if not self.processes:
            return self._pool or self._executor()
        with self._threads_lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="postprocess")
            return self._threads

    async def _large_executor(self) -> Executor:
        if self._pool is not None:
            return self._pool
        return await asyncio.to_thread(self._executor)

    async def process(
        self,
        raw: Path,
        image_path: Path,
        thumb_path: Path,
        output: OutputSpec,
        *,
        pixels: int | None = None,
        root: Path | None = None,
    ) -> Processed:
        """Write the processed image and the thumbnail; raises what `postprocess` raises.

        `pixels` is the raw image's width times height, if known: a small image is done in a
        thread. Unknown counts as large. With `root` (the workspace), no symbolic link below it
        is followed."""
        loop = asyncio.get_running_loop()
        small = pixels is not None and pixels <= SMALL_PIXELS
        pool = self._small_executor() if small else await self._large_executor()
        try:
            return await loop.run_in_executor(
                pool, postprocess, raw, image_path, thumb_path, output, root
            )
        except BrokenProcessPool:
            self._discard(pool)  # a worker died (out of memory?): the next image gets a new one
            raise BadResponseError("post-processing worker died while processing it") from None

    def _discard(self, pool: Executor) -> None:
        """Shut a broken pool down, unless another has taken its place already. Only that pool:
        the others' work goes on."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self.stores.close()
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
        with self._threads_lock:
            if self._threads is not None:
                self._threads.shutdown(wait=False, cancel_futures=True)
                self._threads = None

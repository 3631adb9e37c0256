"""What happens to an image after the provider answers: it is stored, then post-processed.

Storing is short and comes first (see `storing`): the image is written to `raw/` and recorded
before the attempt's slot takes a new paid request. Post-processing (resize, encode, thumbnail)
is its own stage with its own bounded workers: worker processes by default, so the CPU-heavy
part never competes with the event loop for the GIL. Small images (at most `SMALL_PIXELS`)
are post-processed in threads instead: their work is a fraction of a millisecond. (Images of
at most `store_work.INLINE_PIXELS` are post-processed as they are stored.)
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from .errors import BadResponseError
from .imaging import PlainOutput, Processed, postprocess
from .spec import OutputSpec
from .storing import StoreWorkers
from .workers import process_pool

__all__ = ["SMALL_PIXELS", "PostStage"]

SMALL_PIXELS = 256 * 256
"""Raw images of at most this many pixels are post-processed in a thread, not a process."""


class PostStage:
    """Post-processing workers shared by every job an orchestrator runs, and the workers that
    store paid images (`stores`: processes too, unless `processes` is False)."""

    def __init__(self, workers: int | None = None, *, processes: bool = True) -> None:
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.pool = process_pool(self.workers, processes=processes)
        self._threads: ThreadPoolExecutor | None = None
        self._threads_lock = threading.Lock()
        """Held for a moment by the loop: it must not wait for a pool that is starting."""
        self.stores = StoreWorkers(processes=processes)

    def _small_executor(self) -> ThreadPoolExecutor:
        """Threads: for small images, and for every image when there are no worker processes."""
        with self._threads_lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="postprocess")
            return self._threads

    async def _large_executor(self) -> Executor:
        """The worker processes, started if need be in a thread (the fork server's start alone
        takes a few hundred ms, which the loop must not wait for); threads if there are none."""
        pool = self.pool.started
        if pool is None and self.pool.processes:
            pool = await asyncio.to_thread(self.pool.start)
        return pool or self._small_executor()

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
            plain = PlainOutput.of(output)  # a worker reads it without the spec's models
            return await loop.run_in_executor(
                pool, postprocess, raw, image_path, thumb_path, plain, root
            )
        except BrokenProcessPool:  # a worker died (out of memory?): the next image gets a
            assert isinstance(pool, ProcessPoolExecutor)  # new pool; only this one is shut down
            self.pool.discard(pool)
            raise BadResponseError("post-processing worker died while processing it") from None

    def close(self) -> None:
        self.stores.close()
        self.pool.close()
        with self._threads_lock:
            if self._threads is not None:
                self._threads.shutdown(wait=False, cancel_futures=True)
                self._threads = None

"""What happens to an image after the provider answers: it is stored, then post-processed.

Storing is short and comes first: the bytes are checked to be one whole image (header,
checksums and end; not decoded), written to `raw/` (temp file, fsync, rename) and then
recorded, all before the attempt's slot takes a new paid request, so a crash loses at most the
images in flight. Post-processing (resize, encode, thumbnail) is its own stage with its own
bounded workers: worker processes by default, so the CPU-heavy part never competes with the
event loop for the GIL. Small images (at most `SMALL_PIXELS`) are post-processed in threads
instead: their work is a fraction of a millisecond, less than the round trip to a worker
process costs.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from .errors import BadResponseError, StorageError
from .imaging import ImageInfo, Processed, check_image, postprocess, process_bytes
from .journal import RawImage
from .providers.base import GeneratedImage
from .spec import OutputSpec
from .storage import Workspace, atomic_write, sha256_hex
from .workers import start_worker_processes

__all__ = ["INLINE_PIXELS", "SMALL_PIXELS", "PostStage", "Stored", "store_raw"]

SMALL_PIXELS = 256 * 256
"""Raw images of at most this many pixels are post-processed in a thread, not a process."""
INLINE_PIXELS = 64 * 64
"""Raw images of at most this many pixels are post-processed as they are stored, in one trip."""


@dataclass(frozen=True)
class Stored:
    """A paid image written to `raw/`, and, if it was small, its post-processing's outcome."""

    raw: RawImage
    processed: Processed | None = None
    """Set when the image was small and was post-processed in the same trip."""
    failed: str | None = None
    """Why that post-processing failed (the raw image is kept all the same)."""


async def store_raw(
    workspace: Workspace,
    job_id: str,
    item_id: str,
    image: GeneratedImage,
    output: OutputSpec | None = None,
    before_write: Callable[[], None] | None = None,
) -> Stored:
    """Check and write the paid image; raises `BadResponseError` if it is no usable image.

    With `output`, an image of at most `INLINE_PIXELS` is post-processed in the same trip to a
    thread, from the bytes in memory: for so small an image a trip of its own costs more than
    the work. (A larger one is not: the slot would wait for its encoding.) `before_write` runs
    in that thread just before the file is written (the lease's check)."""
    stored = await asyncio.to_thread(
        _check_and_write, workspace, job_id, item_id, image.data, output, before_write
    )
    info, path, processed, failed = stored
    raw = RawImage(
        path=workspace.relative(path),
        sha256=sha256_hex(image.data),
        mime_type=info.mime_type,
        bytes=len(image.data),
        width=info.width,
        height=info.height,
        model=image.model,
        usage=image.usage,
        cost_usd=image.cost_usd,
        revised_prompt=image.revised_prompt,
    )
    return Stored(raw, processed, failed)


def _check_and_write(
    workspace: Workspace,
    job_id: str,
    item_id: str,
    data: bytes,
    output: OutputSpec | None,
    before_write: Callable[[], None] | None,
) -> tuple[ImageInfo, Path, Processed | None, str | None]:
    """One trip to a thread: the bytes checked to be one whole image (not decoded: the slot
    would wait for that; post-processing decodes), then written; a small one is
    post-processed too."""
    info = check_image(data)
    path = workspace.raw_path(job_id, item_id, info.ext)
    if before_write is not None:
        before_write()
    atomic_write(path, data, root=workspace.root)
    if output is None or info.width * info.height > INLINE_PIXELS:
        return info, path, None, None
    image_path = workspace.image_path(job_id, item_id, output.format)
    thumb_path = workspace.thumb_path(job_id, item_id)
    try:
        processed = process_bytes(data, image_path, thumb_path, output, workspace.root)
    except StorageError:
        return info, path, None, None  # the paid image is kept: recorded, processed later
    except (BadResponseError, OSError, ValueError) as error:
        return info, path, None, f"post-processing failed: {error}"
    return info, path, processed, None


class PostStage:
    """Post-processing workers shared by every job an orchestrator runs."""

    def __init__(self, workers: int | None = None, *, processes: bool = True) -> None:
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.processes = processes
        self._pool: Executor | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        """Held while the pool starts (a few hundred ms for worker processes), in a thread."""
        self._threads_lock = threading.Lock()
        """Held for a moment by the loop: it must not wait for a pool that is starting."""

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
        try:
            pool = self._small_executor() if small else await self._large_executor()
            return await loop.run_in_executor(
                pool, postprocess, raw, image_path, thumb_path, output, root
            )
        except BrokenProcessPool:
            self.close()  # a worker died (out of memory?): the next image gets a fresh pool
            raise BadResponseError("post-processing worker died while processing it") from None

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
        with self._threads_lock:
            if self._threads is not None:
                self._threads.shutdown(wait=False, cancel_futures=True)
                self._threads = None

"""Storing a paid image, the step between the provider's answer and its record.

The bytes are checked to be one whole image (header, checksums and end; not decoded), written to
`raw/` (temp file, fsync, rename, the folder synced), and a very small image is post-processed
in the same trip. All of it happens before the attempt's slot takes a new paid request, so a
crash loses at most the images in flight.

`StoreWorkers` does it in worker processes of its own (never behind post-processing): writing
three files is some forty system calls, and a thread hands the GIL to the event loop and the
journal's writer, and waits for it back, at every one of them. Measured with small images on two
CPUs, those hand-offs cost more than the work (see `benchmarks/RESULTS.md`); a worker process has
its own GIL. A worker checks the run's lease on its own connection to the journal just before it
writes (`LeaseCheck`). Where no worker process can start, while they start, and when one
dies, threads do the same. What a worker does is in `store_work`, which imports little.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

from .errors import LeaseLostError
from .imaging import PlainOutput
from .journal import LeaseNotHeld, ProcessedImage, RawImage, Run
from .providers.base import GeneratedImage
from .spec import OutputSpec
from .storage import Workspace
from .store_pipes import PipeWorkers, WorkerDied, pipe_pool
from .store_work import INLINE_PIXELS, Keep, Written, check_and_write, store_here

__all__ = ["INLINE_PIXELS", "StoreWorkers", "Stored"]

STORE_WORKERS = 2
"""Worker processes that store images: each image takes them a fraction of a millisecond
(more for a large one's fsync), and they never wait behind post-processing."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stored:
    """A paid image written to `raw/`, and, if it was small, its post-processing's outcome."""

    raw: RawImage
    processed: ProcessedImage | None = None
    """Set when the image was small and was post-processed in the same trip."""
    failed: str | None = None
    """Why that post-processing failed (the raw image is kept all the same)."""
    kept: bool = False
    """Kept in the result cache as well, by the worker that stored it."""


class StoreWorkers:
    """Where paid images are stored: worker processes shared by every job an orchestrator runs,
    started on first use; threads with `processes=False` or when none can start."""

    def __init__(self, workers: int = STORE_WORKERS, *, processes: bool = True) -> None:
        self.pool = pipe_pool(workers, processes=processes)
        self._starting: threading.Thread | None = None

    async def store(
        self,
        workspace: Workspace,
        item_id: str,
        image: GeneratedImage,
        run: Run,
        output: OutputSpec | None = None,
        keep: Keep | None = None,
    ) -> Stored:
        """Check and write `run`'s paid image; `BadResponseError` if it is no usable image,
        `LeaseLostError` (nothing written) if the run no longer holds its job's key.

        With `output`, an image of at most `INLINE_PIXELS` is post-processed in the same trip,
        from the bytes in memory: for so small an image a trip of its own costs more than the
        work. (A larger one is not: the slot would wait for its encoding.) With `keep`, a worker
        process keeps it in the result cache too (`Stored.kept`); threads do not."""
        job_id, data = run.job_id, image.data
        plain = PlainOutput.of(output) if output is not None else None
        pool = self._processes()
        written: Written | None = None
        if pool is not None:
            written = await self._in_process(
                pool, workspace, job_id, item_id, data, plain, run, keep
            )
        if written is None:  # threads, or the worker died: the image is paid, it is kept
            written = await asyncio.to_thread(
                check_and_write, workspace, job_id, item_id, data, plain, run.check_lease_here
            )
        raw = RawImage(
            path=written.raw_path,
            sha256=written.sha256,
            mime_type=written.mime_type,
            bytes=len(data),
            width=written.width,
            height=written.height,
            model=image.model,
            usage=image.usage,
            cost_usd=image.cost_usd,
            revised_prompt=image.revised_prompt,
        )
        done = written.processed
        processed = ProcessedImage(*done) if done is not None else None
        return Stored(raw, processed, written.failed, written.kept)

    async def _in_process(
        self,
        pool: PipeWorkers,
        workspace: Workspace,
        job_id: str,
        item_id: str,
        data: bytes,
        output: PlainOutput | None,
        run: Run,
        keep: Keep | None,
    ) -> Written | None:
        """The image stored by a worker process; None if the pool broke (a worker died):
        the caller stores it in a thread instead, and the next image gets a fresh pool."""
        check = run.lease_check()
        fields = output.fields() if output is not None else None
        lease = (str(check.database), check.slot, check.token)
        try:
            return await pool.call(
                store_here, str(workspace.root), job_id, item_id, data, fields, lease, keep
            )
        except WorkerDied:
            self.pool.discard(pool)
            return None
        except LeaseNotHeld:
            await asyncio.to_thread(run.check_lease_here)  # raises, naming who holds the key
            raise LeaseLostError(
                f"job {job_id}: this run no longer holds its key", job_id=job_id
            ) from None

    def start_soon(self) -> None:
        """Start the worker processes in a thread of their own (unless they run or are
        starting): images are stored in threads until they are up."""
        if not self.pool.processes or self.pool.started is not None:
            return
        if self._starting is None or not self._starting.is_alive():
            self._starting = threading.Thread(
                target=self._start_quietly, name="store-start", daemon=True
            )
            self._starting.start()

    def _start_quietly(self) -> None:
        """`WorkerPool.start`, whose refusals by the system are logged there; anything else
        it raises is said once, and images are stored in threads from then on."""
        try:
            self.pool.start()
        except Exception as error:
            self.pool.processes = False
            _log.warning("storing images in threads: the store workers failed to start (%r)", error)

    def _processes(self) -> PipeWorkers | None:
        """The pool; None when images are stored in threads: for good (no worker process can
        start) or while the pool starts. Starting takes a few hundred ms, and the slots that
        waited for it held their turns all that time: a stall at every run's start, and
        after a worker died."""
        if self.pool.started is None:
            self.start_soon()
        return self.pool.started

    def close(self) -> None:
        self.pool.close()

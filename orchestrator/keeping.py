"""Keeping a paid image: storing and recording it, post-processing it, remaking lost outputs.

`ImageKeeping` is the part of `ItemWork` (see `items`) that deals with an image once the
provider (or the result cache) handed it over. A paid image is always recorded, even when a
cancel lands as it arrives (`finish_before_cancel`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine
from typing import Any, TypeVar

from .cache import CachedImage, ResultCache, about
from .errors import BadResponseError
from .imaging import Processed
from .journal import ProcessedImage, Run
from .providers.base import GeneratedImage
from .records import ErrorInfo, ItemRecord
from .spec import JobConfig
from .stages import PostStage
from .storage import Workspace, sha256_hex
from .storing import Stored

__all__ = ["ImageKeeping", "finish_before_cancel", "looked_at"]

T = TypeVar("T")


class ImageKeeping:
    """What happens to an item's image after the call; `ItemWork` provides the fields."""

    verbs: Run
    workspace: Workspace
    config: JobConfig
    post: PostStage
    cache: ResultCache | None

    async def remake_missing(self, completed: list[ItemRecord]) -> list[str]:
        """Post-process again, from the raw image, the completed items whose processed image
        or thumbnail is gone or empty (they are written without fsync: a power cut can lose
        them); returns their ids. The paths are the same, so the journal has nothing to say."""
        missing = await asyncio.to_thread(self._missing_outputs, completed)
        for item in missing:
            if await asyncio.to_thread(self._raw_intact, item):
                await self.post.process(
                    self.workspace.absolute(item.raw_path or ""),
                    self.workspace.absolute(item.image_path or ""),
                    self.workspace.absolute(item.thumb_path or ""),
                    self.config.output,
                    root=self.workspace.root,
                )
        return [item.id for item in missing]

    def _missing_outputs(self, completed: list[ItemRecord]) -> list[ItemRecord]:
        def lost(rel: str | None) -> bool:
            try:
                return rel is not None and self.workspace.absolute(rel).stat().st_size == 0
            except OSError:
                return True

        return [item for item in completed if lost(item.image_path) or lost(item.thumb_path)]

    async def _after_keep(
        self,
        item: ItemRecord,
        stored: Stored,
        key: str | None = None,
        image: GeneratedImage | None = None,
    ) -> None:
        """What is left once the paid image is recorded: its post-processing (unless it was
        done as it was stored) and, with a `key`, the result cache's copy of `image`."""
        work: list[Coroutine[Any, Any, object]] = []
        if stored.failed is not None:
            info = ErrorInfo(kind="postprocess", message=stored.failed)
            work.append(self.verbs.fail(item.id, info))
        elif stored.processed is None:
            work.append(self._postprocess(item, pixels=stored.raw.width * stored.raw.height))
        if stored.kept and self.cache is not None:
            self.cache.kept_elsewhere()
        elif key is not None and image is not None and self.cache is not None:
            raw, sha256 = self.workspace.root / stored.raw.path, stored.raw.sha256
            kept = self.cache.keep(
                key, image, raw=raw, sha256=sha256, job_id=item.job_id, item_id=item.id
            )
            work.append(kept)
        if len(work) == 1:
            await work[0]  # no task of its own
        elif work:
            await asyncio.gather(*work)

    async def _from_cache(self, item: ItemRecord, hit: CachedImage) -> None:
        """An earlier job paid for this very request: its image, stored and processed as
        this item's, with no call and no attempt."""
        started = await self.verbs.start_postprocess(item.id)
        if started is None:
            return  # cancelled meanwhile
        paid_by = f"{hit.job_id}/{hit.item_id}"
        recorded, stored = await finish_before_cancel(self._keep(started, hit.image, paid_by))
        await self._after_keep(recorded, stored)

    async def _keep(
        self, item: ItemRecord, image: GeneratedImage, cached_from: str | None = None
    ) -> tuple[ItemRecord, Stored]:
        """Store the paid image and record it (see `_store`)."""
        recording, stored = await self._store(item, image, cached_from)
        return await recording, stored

    async def _store(
        self,
        item: ItemRecord,
        image: GeneratedImage,
        cached_from: str | None = None,
        key: str | None = None,
    ) -> tuple[asyncio.Future[ItemRecord], Stored]:
        """Store the paid image and queue its record (a small one post-processed and completed
        in the same steps); `BadResponseError` if it is no usable image. The record commits
        before any verb queued after it, such as the next attempt's start. A run that lost its
        lock while it waited for the answer writes no file: the file would replace the new
        owner's image at the same path. With the request's `key`, a store worker keeps the
        image in the result cache as well (else `_after_keep` does)."""
        stores, output = self.post.stores, self.config.output
        keep = None
        if key is not None and self.cache is not None:
            keep = (str(self.cache.folder), key, about(image, item.job_id, item.id))
        stored = await stores.store(self.workspace, item.id, image, self.verbs, output, keep)
        raw = stored.raw
        if cached_from is not None:
            raw = dataclasses.replace(raw, cached_from=cached_from)
        recording = self.verbs.queue_record_image(item.id, raw, stored.processed)
        recording.add_done_callback(looked_at)  # also when the run stops before it awaits it
        return recording, stored

    async def _postprocess(self, item: ItemRecord, *, pixels: int | None = None) -> None:
        assert item.raw_path is not None
        job_id, fmt = item.job_id, self.config.output.format
        try:
            done = await self.post.process(
                self.workspace.absolute(item.raw_path),
                self.workspace.image_path(job_id, item.id, fmt),
                self.workspace.thumb_path(job_id, item.id),
                self.config.output,
                pixels=pixels,
                root=self.workspace.root,
            )
        except (BadResponseError, OSError, ValueError) as error:
            info = ErrorInfo(kind="postprocess", message=f"post-processing failed: {error}")
            await self.verbs.fail(item.id, info)
            return
        await self.verbs.complete(item.id, self._relative(done))

    def _relative(self, done: Processed) -> ProcessedImage:
        """What the journal keeps of post-processing: paths relative to the workspace."""
        return ProcessedImage(
            image_path=self.workspace.relative(done.image_path),
            thumb_path=self.workspace.relative(done.thumb_path),
            width=done.width,
            height=done.height,
        )

    def _raw_intact(self, item: ItemRecord) -> bool:
        assert item.raw_path is not None
        try:
            data = self.workspace.absolute(item.raw_path).read_bytes()
        except OSError:
            return False
        return item.raw_sha256 is not None and sha256_hex(data) == item.raw_sha256


async def finish_before_cancel(work: Coroutine[Any, Any, T] | asyncio.Future[T]) -> T:
    """Await `work` to its end even if this task is cancelled meanwhile, then re-raise that."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # seen: a lost lease meanwhile changes nothing about stopping
        raise


def looked_at(future: asyncio.Future[Any]) -> None:
    """Mark a verb's outcome as seen: a run that stopped meanwhile has its own way out."""
    if not future.cancelled():
        future.exception()

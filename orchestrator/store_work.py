"""What a store worker does with a paid image: check it, write it to `raw/`, and post-process
it there and then if it is very small.

This runs in the store's worker processes (see `storing`), so it imports only what that work
needs: Pillow and the workspace's files, not the journal, the models or asyncio. The fork
server loads it once for every worker (`workers.PRELOAD`); a worker that had to import the
whole library first took a fifth of a second of CPU at each run's start, from the run.

A call and its answer cross a pipe, pickled, and the event loop's process makes and reads
them: so they hold strings and numbers, not paths or dataclasses. Unpickling a `Path` parses
it again, and a frozen dataclass sets each field through `object.__setattr__`: the answer
with its three paths took the loop 19 us to read, a tuple of strings takes it half of one.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from .cache_files import keep_here
from .errors import BadResponseError, StorageError
from .imaging import PlainOutput, check_image, process_bytes
from .journal.fence import LeaseCheck
from .storage import Workspace, atomic_write, sha256_hex

__all__ = ["INLINE_PIXELS", "Outputs", "Written", "check_and_write", "store_here"]

INLINE_PIXELS = 64 * 64
"""Raw images of at most this many pixels are post-processed as they are stored, in one trip."""


class Outputs(NamedTuple):
    """Where a small image's post-processing wrote, relative to the workspace."""

    image_path: str
    thumb_path: str
    width: int
    height: int


class Written(NamedTuple):
    """What a trip to store an image gives back: the image's type and size, its path in `raw/`
    (relative to the workspace) and SHA-256, and, if it was small enough to be post-processed
    then, where that wrote or why it failed."""

    mime_type: str
    width: int
    height: int
    raw_path: str
    sha256: str
    processed: Outputs | None = None
    failed: str | None = None
    kept: bool = False
    """Kept in the result cache as well (see `store_here`)."""


Keep = tuple[str, str, dict[str, Any]]
"""What a worker needs to keep an image in the result cache: the cache's folder, the request's
key, and the rest of the entry (see `cache_files.keep_here`)."""


def check_and_write(
    workspace: Workspace,
    job_id: str,
    item_id: str,
    data: bytes,
    output: PlainOutput | None,
    before_write: Callable[[], None],
) -> Written:
    """One trip to a worker: the bytes checked to be one whole image (not decoded: the slot
    would wait for that; post-processing decodes), the lease checked (`before_write`), then
    the bytes written and hashed (here, not on the loop: a large image takes milliseconds);
    a small one is post-processed too."""
    info = check_image(data)
    path = workspace.raw_path(job_id, item_id, info.ext)
    before_write()
    atomic_write(path, data, root=workspace.root)
    written = Written(
        info.mime_type, info.width, info.height, workspace.relative(path), sha256_hex(data)
    )
    if output is None or info.width * info.height > INLINE_PIXELS:
        return written
    image_path = workspace.image_path(job_id, item_id, output.format)
    thumb_path = workspace.thumb_path(job_id, item_id)
    try:
        done = process_bytes(data, image_path, thumb_path, output, workspace.root)
    except StorageError:
        return written  # the paid image is kept: processed later
    except (BadResponseError, OSError, ValueError) as error:
        return written._replace(failed=f"post-processing failed: {error}")
    image, thumb = workspace.relative(done.image_path), workspace.relative(done.thumb_path)
    return written._replace(processed=Outputs(image, thumb, done.width, done.height))


def store_here(
    root: str,
    job_id: str,
    item_id: str,
    data: bytes,
    output: tuple[str, int, str | None, str, int] | None,
    lease: tuple[str, str, str],
    keep: Keep | None = None,
) -> Written:
    """`check_and_write` as a worker process takes it: the workspace as its root, the output
    as `PlainOutput`'s fields, the lease as `LeaseCheck`'s (`LeaseNotHeld` if it is lost).

    With `keep`, the image is kept in the result cache too, once it is written: its link and
    index entry cost the event loop's process a trip to the cache's thread and that thread's
    time, which a busy loop felt more than any other step (0.4 ms per image of a run's time,
    measured with 16x16 images)."""
    plain = PlainOutput(*output) if output is not None else None
    workspace = _workspace(root)
    written = check_and_write(workspace, job_id, item_id, data, plain, _lease(*lease).require)
    if keep is None:
        return written
    folder, key, about = keep
    raw = os.path.join(str(workspace.root), written.raw_path)
    return written._replace(kept=keep_here(folder, key, raw, data, written.sha256, about))


@functools.lru_cache(maxsize=8)
def _workspace(root: str) -> Workspace:
    return Workspace(Path(root))


@functools.lru_cache(maxsize=8)
def _lease(database: str, slot: str, token: str) -> LeaseCheck:
    return LeaseCheck(Path(database), slot, token)

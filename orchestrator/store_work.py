"""What a store worker does with a paid image: check it, write it to `raw/`, and post-process
it there and then if it is very small.

This runs in the store's worker processes (see `storing`), so it imports only what that work
needs: Pillow and the workspace's files, not the journal, the models or asyncio. The fork
server loads it once for every worker (`workers.PRELOAD`); a worker that had to import the
whole library first took a fifth of a second of CPU at each run's start, from the run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .errors import BadResponseError, StorageError
from .imaging import ImageInfo, PlainOutput, Processed, check_image, process_bytes
from .storage import Workspace, atomic_write, sha256_hex

__all__ = ["INLINE_PIXELS", "Written", "check_and_write"]

INLINE_PIXELS = 64 * 64
"""Raw images of at most this many pixels are post-processed as they are stored, in one trip."""

Written = tuple[ImageInfo, Path, str, Processed | None, str | None]
"""What a trip to store an image gives back: the image's kind and size, its path in `raw/`,
its SHA-256, and the outcome of its post-processing if it was small enough to be done then."""


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
    sha256 = sha256_hex(data)
    if output is None or info.width * info.height > INLINE_PIXELS:
        return info, path, sha256, None, None
    image_path = workspace.image_path(job_id, item_id, output.format)
    thumb_path = workspace.thumb_path(job_id, item_id)
    try:
        processed = process_bytes(data, image_path, thumb_path, output, workspace.root)
    except StorageError:
        return info, path, sha256, None, None  # the paid image is kept: processed later
    except (BadResponseError, OSError, ValueError) as error:
        return info, path, sha256, None, f"post-processing failed: {error}"
    return info, path, sha256, processed, None

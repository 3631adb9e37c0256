"""The result cache's images: hard links to the raw images that jobs paid for.

An entry of the cache's index names a file under `cache/images/`, which is a second name for
the item's raw image (`raw/<job>/<item>.<ext>`), not a second copy: keeping an image in the
cache writes no bytes. The link outlives the job's copy, so a later identical request is still
a hit once that job's files are deleted; only then does the cache hold space of its own, and it
keeps at most its size limit of such images (the oldest go first, see `trim`). Where the file
system has no hard links, the image is copied instead.
"""

from __future__ import annotations

import functools
import multiprocessing.util
import os
from pathlib import Path
from typing import Any

import diskcache

from .errors import UnusableFileError
from .imaging import MAX_IMAGE_BYTES
from .storage import atomic_write, make_folders, read_regular, sha256_hex

__all__ = ["IMAGES", "keep_file", "keep_here", "open_index", "read_file", "trim"]

IMAGES = "images"
"""The folder of the cache's images, inside the cache's folder."""


def open_index(folder: Path | str) -> diskcache.Cache:
    """The cache's index in `folder` (diskcache; made if it is not there: slow, SQLite files).

    cull_limit 0: diskcache no longer looks for expired entries and reads the index's size at
    every entry set (three statements of seven); nothing here expires, and the index never
    nears diskcache's limit: `trim` keeps the images' size."""
    return diskcache.Cache(str(folder), cull_limit=0)


def keep_here(
    folder: str, key: str, raw: str, data: bytes, sha256: str, about: dict[str, Any]
) -> bool:
    """Keep a paid image in the cache from the process that stored it (a store worker): its
    name made (`keep_file`) and its entry written, in this process, so that the event loop's
    process does none of it. `about`: the rest of the entry (its type, model, revised prompt
    and the job and item that paid). False if it could not be kept: the cache is a saving,
    never a failure."""
    try:
        name = keep_file(Path(folder), key, Path(raw), data, _made)
        _index(folder).set(key, {"file": name, "sha256": sha256, **about})
    except Exception:  # a full or read-only disk, a damaged index: no saving, no failure
        return False
    return True


_made: set[Path] = set()
"""The cache folders this process checked and made already (see `keep_file`)."""


@functools.lru_cache(maxsize=4)
def _index(folder: str) -> diskcache.Cache:
    """This process's connection to the index in `folder`, opened once, and closed as the
    process leaves (a worker leaves through multiprocessing, which runs its finalizers; SQLite
    then folds its log back into the index, as the event loop's process does at its end)."""
    index = open_index(folder)
    multiprocessing.util.Finalize(index, index.close, exitpriority=0)
    return index


def keep_file(folder: Path, key: str, raw: Path, data: bytes, made: set[Path]) -> str:
    """Give `raw` (whose bytes are `data`) a name in the cache, `images/<ab>/<key><ext>`, and
    return that name (relative to `folder`). A link where the file system allows it, else a
    copy; `OSError` if neither can be made. `made`: the folders checked and made already."""
    name = f"{IMAGES}/{key[:2]}/{key}{raw.suffix}"
    target = folder / name
    if target.parent not in made:
        make_folders(folder, target.parent)  # refuses a link planted on the way
        made.add(target.parent)
    try:
        _link(raw, target)
    except OSError:  # no hard links here (some FUSE and network mounts): a copy will do
        atomic_write(target, data, durable=False, root=folder)
    return name


def _link(raw: Path, target: Path) -> None:
    try:
        os.link(raw, target)
    except FileExistsError:  # an earlier image of the same request: this one replaces it
        target.unlink()
        os.link(raw, target)


def read_file(folder: Path, name: str, sha256: str) -> bytes | None:
    """The bytes of the cache's image `name`, or None if it is gone, too large or not the image
    the entry recorded (`sha256`)."""
    path = folder / name
    if ".." in Path(name).parts or path.is_symlink():
        return None
    try:
        data = read_regular(path, MAX_IMAGE_BYTES)
    except (OSError, UnusableFileError):
        return None
    return data if sha256_hex(data) == sha256 else None


def trim(folder: Path, size_limit: int) -> int:
    """Remove the oldest images that only the cache holds (their job's copy deleted, or a copy
    made where links are not possible) until they take at most `size_limit` bytes. Images a job
    still holds cost nothing and stay. Their entries become misses. Returns how many went."""
    try:
        held = _held(folder / IMAGES)
    except OSError:  # no images yet, or a folder that cannot be read: nothing to trim
        return 0
    total = sum(size for _, size, _ in held)
    removed = 0
    for _, size, path in sorted(held):
        if total <= size_limit:
            break
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:  # a read-only disk: the cache stays as large as it is
            break
        total -= size
        removed += 1
    return removed


def _held(images: Path) -> list[tuple[float, int, str]]:
    """(modified, bytes, path) of each image under `images` that has no other name."""
    held = []
    for shard in os.scandir(images):
        if not shard.is_dir(follow_symlinks=False):
            continue
        with os.scandir(shard.path) as files:
            for file in files:
                info = file.stat(follow_symlinks=False)
                if file.is_file(follow_symlinks=False) and info.st_nlink == 1:
                    held.append((info.st_mtime, info.st_size, file.path))
    return held

"""The result cache: an identical request is not paid for twice.

The key is a sha256 of what decides the picture: the provider, the model, the prompt sent, the
parameters (size, quality, style, seed, negative prompt) and the bytes of every reference
image. An entry of the index (diskcache, in the workspace's `cache/` folder, across jobs and
runs) names the image, its sha256 and the job and item that paid for it. The image itself is a
hard link to the item's raw image (see `cache_files`): keeping it writes no second copy, and it
outlives the job's files; the images only the cache still holds take at most `size_limit`
bytes (the oldest go first).

Two items of one job that ask the same are two images (how a spec asks for variations); only a
later job's identical request is a hit, which costs nothing and makes no call. The cache is a
saving, never a source of failure: an entry or image that cannot be read or written, or whose
bytes are not the ones recorded, is a miss. `lookup` and `keep` do the disk work on the cache's
own thread, each trip taking all that waits (as the journal groups its commits); `get` and `put`
are the blocking calls underneath. A store worker keeps the images it stores itself
(`cache_files.keep_here`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import diskcache

from .cache_files import keep_file, open_index, read_file, trim
from .call_thread import CallThread
from .errors import BadResponseError
from .imaging import inspect_image
from .providers.base import GeneratedImage, GenerateRequest

__all__ = ["SIZE_LIMIT", "CachedImage", "ResultCache", "about", "request_key"]

T = TypeVar("T")
SIZE_LIMIT = 2 * 1024**3
"""Bytes of images the cache keeps at most once their jobs' copies are deleted."""
_PARAMS = ("size", "quality", "style", "seed", "negative_prompt")


@dataclass(frozen=True)
class CachedImage:
    """An image a request got earlier, and which job's item paid for it."""

    image: GeneratedImage
    job_id: str
    item_id: str


@dataclass(frozen=True)
class _Kept:
    """An image to keep, as the next batch will write it."""

    image: GeneratedImage
    raw: Path
    """The item's raw image, which holds `image.data`."""
    sha256: str
    job_id: str
    item_id: str


def request_key(provider: str, model: str | None, request: GenerateRequest) -> str:
    """The sha256 of everything that decides the picture (never the item id or the attempt)."""
    decided: dict[str, Any] = {
        "provider": provider,
        "model": model or "",
        "prompt": request.prompt,
        "params": {name: getattr(request, name) for name in _PARAMS},
        "references": [hashlib.sha256(ref.data).hexdigest() for ref in request.references],
    }
    canonical = json.dumps(decided, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResultCache:
    """The workspace's cache folder, opened on first use (blocking: call it from a thread)."""

    def __init__(self, folder: Path, *, size_limit: int = SIZE_LIMIT) -> None:
        self.folder = folder
        self.size_limit = size_limit
        self._cache: diskcache.Cache | None = None
        """The index: entries are small (a name, a hash); diskcache's own limit never binds."""
        self._lock = threading.Lock()
        """Guards what the event loop touches (the queues below): held only for a moment."""
        self._open_lock = threading.Lock()
        """Held while the cache is opened (SQLite files made: slow) or closed, never by the
        loop: a lookup made while the cache's thread opens it must not stop the loop."""
        self._thread: CallThread | None = None
        self._pending: dict[str, _Kept] = {}
        self._batch: Future[bool] | None = None
        """Entries waiting, and the batch that will write them (submitted, not yet started)."""
        self._asked: list[str] = []
        self._answers: asyncio.Future[dict[str, CachedImage | None]] | None = None
        """Keys looked up, and the trip to the cache's thread that will answer them."""
        self._wrote = False
        """Whether images were kept since the cache was opened (`close` trims then)."""
        self._folders: set[Path] = set()
        """The folders of `images/` made (or found) already, by the thread that keeps them."""

    async def lookup(self, key: str) -> CachedImage | None:
        """`get` on the cache's thread; the lookups asked while it is busy are answered in one
        trip, and their callers go on in the order they asked."""
        loop = asyncio.get_running_loop()
        with self._lock:
            thread, answers = self._executor().on_loop(loop), self._answers
            if answers is not None and answers.get_loop() is not loop:  # another loop's trip
                answers = loop.run_in_executor(thread, self._answer, [key])
            else:
                self._asked.append(key)
                if answers is None:
                    answers = self._answers = loop.run_in_executor(thread, self._answer)
        return (await asyncio.shield(answers))[key]  # the trip goes on for the others

    def _answer(self, keys: list[str] | None = None) -> dict[str, CachedImage | None]:
        """`get` for `keys`, or for every key asked and waiting (a trip's batch)."""
        if keys is None:
            with self._lock:
                keys, self._asked, self._answers = self._asked, [], None
        return {key: self.get(key) for key in keys}

    async def keep(
        self, key: str, image: GeneratedImage, *, raw: Path, sha256: str, job_id: str, item_id: str
    ) -> bool:
        """`put` on the cache's thread, grouped with the entries kept meanwhile."""
        with self._lock:
            self._pending[key] = _Kept(image, raw, sha256, job_id, item_id)
            batch = self._batch
            if batch is None:
                batch = self._batch = self._executor().submit(self._write_pending)
        return await _shared(batch)

    def _write_pending(self) -> bool:
        """Write every entry waiting, in one transaction; False if they could not be."""
        with self._lock:
            entries, self._pending, self._batch = self._pending, {}, None
        try:
            cache = self._opened()
            values = {}
            for key, kept in entries.items():
                with contextlib.suppress(OSError, ValueError):  # that image goes without
                    values[key] = self._file(key, kept)
            with cache.transact():
                for key, value in values.items():
                    cache.set(key, value)
        except Exception:  # a full or read-only disk: the job goes on without the saving
            return False
        return len(values) == len(entries)

    def _file(self, key: str, kept: _Kept) -> dict[str, Any]:
        """The image's name in the cache, made (a link to `kept.raw`), and the entry naming it."""
        self._wrote = True
        name = keep_file(self.folder, key, kept.raw, kept.image.data, self._folders)
        return _value(kept, name)

    def kept_elsewhere(self) -> None:
        """Another process (a store worker) kept an image here: `close` trims, as after `keep`."""
        self._wrote = True

    async def holds(self, keys: set[str], *, besides: str) -> set[str]:
        """Which of `keys` name an image that a job other than `besides` paid for and that is
        still there: the index read on the cache's thread, no image decoded."""
        if not keys:
            return set()
        with self._lock:
            trip = self._executor().submit(self._held, keys, besides)
        return await _shared(trip)

    def _held(self, keys: set[str], besides: str) -> set[str]:
        if self._cache is None and not (self.folder / diskcache.core.DBNAME).is_file():
            return set()  # nothing was ever kept here: not even opened
        try:
            cache = self._opened()
        except Exception:  # no cache to read: nothing is held
            return set()
        return {key for key in keys if self._still_there(cache, key, besides)}

    def _still_there(self, cache: diskcache.Cache, key: str, besides: str) -> bool:
        try:
            value = cache.get(key)
        except Exception:  # a damaged entry is a miss
            return False
        if not isinstance(value, dict) or value.get("job_id") == besides:
            return False
        if "data" in value:  # an entry from before images were links: the bytes themselves
            return True
        name = str(value.get("file", ""))
        return ".." not in Path(name).parts and (self.folder / name).is_file()

    def _executor(self) -> CallThread:
        """The cache's thread (call with `_lock` held)."""
        if self._thread is None:
            self._thread = CallThread(name="result-cache")
        return self._thread

    def _opened(self) -> diskcache.Cache:
        with self._open_lock:
            if self._cache is None:
                self._cache = open_index(self.folder)
            return self._cache

    def get(self, key: str) -> CachedImage | None:
        """The image stored under `key`, or None (a miss, or an entry that cannot be read)."""
        with self._lock:
            kept = self._pending.get(key)
        if kept is not None:
            return CachedImage(_free(kept.image), kept.job_id, kept.item_id)
        try:
            value = self._opened().get(key)
            data = self._data(value)
        except Exception:  # a damaged entry is a miss, never a failed item
            return None
        if data is None:
            return None
        try:
            inspect_image(data)  # bytes that are no image are no hit
            image = GeneratedImage(
                data=data,
                mime_type=value["mime_type"],
                model=value["model"],
                revised_prompt=value.get("revised_prompt"),
                cost_usd=0.0,
            )
            return CachedImage(image, value["job_id"], value["item_id"])
        except (KeyError, ValueError, TypeError, BadResponseError):
            return None

    def _data(self, value: object) -> bytes | None:
        """The image bytes an entry names, if they are still the ones it recorded."""
        if not isinstance(value, dict):
            return None
        if "data" in value:  # an entry from before images were links: the bytes themselves
            return bytes(value["data"])
        return read_file(self.folder, str(value["file"]), str(value["sha256"]))

    def put(
        self, key: str, image: GeneratedImage, *, raw: Path, sha256: str, job_id: str, item_id: str
    ) -> bool:
        """Keep `image`, whose bytes `raw` holds, under `key` (replacing what was there); False
        if it could not be."""
        try:
            cache = self._opened()
            cache.set(key, self._file(key, _Kept(image, raw, sha256, job_id, item_id)))
        except Exception:  # a full or read-only disk: the job goes on without the saving
            return False
        return True

    def close(self) -> None:
        """Close the cache's connections (its thread's and this thread's) and end its thread,
        once what was kept is written; then trim the images only the cache holds (`trim`)."""
        with self._lock:
            batch = self._batch
        if batch is not None:
            batch.result()
        if self._wrote:
            self._wrote = False
            trim(self.folder, self.size_limit)
        with self._lock:
            thread, self._thread = self._thread, None
        with self._open_lock:
            cache, self._cache = self._cache, None
        if cache is None:
            if thread is not None:
                thread.shutdown(wait=True)
            return
        if thread is not None:
            thread.submit(cache.close).result()  # diskcache keeps one connection per thread
            thread.shutdown(wait=True)
        cache.close()


async def _shared(trip: Future[T]) -> T:
    """Await a trip to the cache's thread that other callers share: a caller that is cancelled
    stops waiting, and the trip still goes (else the others' entries would be dropped)."""
    return await asyncio.shield(asyncio.wrap_future(trip))


def _value(kept: _Kept, name: str) -> dict[str, Any]:
    """What an entry holds: where the image is, what it was sent as, the item that paid."""
    return {"file": name, "sha256": kept.sha256, **about(kept.image, kept.job_id, kept.item_id)}


def about(image: GeneratedImage, job_id: str, item_id: str) -> dict[str, Any]:
    """An entry's fields besides the image's name and sha256 (see `cache_files.keep_here`)."""
    return {
        "mime_type": image.mime_type,
        "model": image.model,
        "revised_prompt": image.revised_prompt,
        "job_id": job_id,
        "item_id": item_id,
    }


def _free(image: GeneratedImage) -> GeneratedImage:
    """`image` as a hit hands it over: no cost, no usage."""
    return image.model_copy(update={"cost_usd": 0.0, "usage": None})

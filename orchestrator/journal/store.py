"""Where the journal keeps its records: one diskcache `Cache` in the workspace's `journal/`.

Keys are short strings (cheap to encode, no pickling) and values JSON text, small enough to stay
inside SQLite, so a rolled-back transaction never loses a file:

```
format                   -> 2
jobs                     -> [job_id, ...] in creation order
job/<job_id>             -> JobRecord (a small header: counts, flags, cost; no item list)
order/<job_id>/<n>       -> item ids n*1000 .. n*1000+999, in the job's order
item/<job_id>/<item_id>  -> ItemRecord
key/<key>                -> the newest job with that key
lock/<key>               -> LockOwner (see locks.py)
seq                      -> the last event's sequence number
event/<seq, 12 digits>   -> Event
```

A commit touches the job header, the items it changes and the events it appends, whatever the
job's size. Writes run in `writing()` (SQLite `BEGIN IMMEDIATE`); a consistent read of many
records runs in `reading()`, one deferred read transaction that sees a single committed state
(the database is in WAL mode, so readers never block the writer).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import diskcache

from ..errors import JournalError, NotFoundError
from ..events import Event, parse_event
from ..records import ItemRecord, JobRecord

__all__ = ["FORMAT", "ORDER_CHUNK", "Store"]

FORMAT = 2
ORDER_CHUNK = 1000
_INLINE_VALUE_BYTES = 1 << 24


class Store:
    """Typed reads and writes of the journal's records in one diskcache `Cache`."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.cache = diskcache.Cache(
            str(directory),
            eviction_policy="none",
            cull_limit=0,
            statistics=False,
            disk_min_file_size=_INLINE_VALUE_BYTES,
        )
        try:
            self._check_format()
        except BaseException:
            self.cache.close()
            raise

    def close(self) -> None:
        self.cache.close()

    def _check_format(self) -> None:
        found = self.cache.get("format")
        if found == FORMAT:
            return
        if found is None and self.cache.get(("jobs",)) is None:
            with self.writing():
                self.cache.set("format", FORMAT)
            return
        raise JournalError(
            f"the journal in {self.cache.directory} was written by an older imagebatch (format "
            f"{found or 1}); finish its jobs with that version, or move the workspace aside"
        )

    # ----------------------------------------------------------- transactions

    @contextmanager
    def writing(self) -> Iterator[None]:
        """One write transaction; nested calls on one thread join the outer one."""
        with self.cache.transact(retry=True):
            yield

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One read transaction: every read inside sees the same committed state."""
        if self.cache._txn_id == threading.get_ident():  # inside this thread's write already
            yield
            return
        connection = self.cache._con  # diskcache's connection of this thread (autocommit)
        connection.execute("BEGIN")
        try:
            yield
        finally:
            connection.execute("COMMIT")

    # -------------------------------------------------------------- raw values

    def get_json(self, key: str) -> Any:
        text = self.cache.get(key)
        return None if text is None else json.loads(text)

    def put_json(self, key: str, value: Any) -> None:
        self.cache.set(key, json.dumps(value, separators=(",", ":")))

    def delete(self, key: str) -> bool:
        return bool(self.cache.delete(key))

    # ------------------------------------------------------------------- jobs

    def job(self, job_id: str) -> JobRecord:
        text = self.cache.get(f"job/{job_id}")
        if text is None:
            raise NotFoundError(f"job {job_id!r} not found; the jobs are listed by `list`")
        return JobRecord.model_validate_json(text)

    def put_job(self, job: JobRecord) -> None:
        self.cache.set(f"job/{job.id}", job.model_dump_json())

    def job_ids(self) -> list[str]:
        ids: list[str] = self.get_json("jobs") or []
        return ids

    def add_job(self, job: JobRecord, item_ids: list[str]) -> None:
        """Record a new job's header, its item order and its place in the job list."""
        self.put_job(job)
        for n in range(0, len(item_ids), ORDER_CHUNK):
            self.put_json(f"order/{job.id}/{n // ORDER_CHUNK}", item_ids[n : n + ORDER_CHUNK])
        self.put_json("jobs", [*self.job_ids(), job.id])
        self.cache.set(f"key/{job.key}", job.id)

    def newest_job_id(self, key: str) -> str | None:
        found: str | None = self.cache.get(f"key/{key}")
        return found

    # ------------------------------------------------------------------ items

    def item(self, job_id: str, item_id: str) -> ItemRecord:
        text = self.cache.get(f"item/{job_id}/{item_id}")
        if text is None:
            raise NotFoundError(f"job {job_id!r} has no item {item_id!r}")
        return ItemRecord.model_validate_json(text)

    def put_item(self, item: ItemRecord) -> None:
        self.cache.set(f"item/{item.job_id}/{item.id}", item.model_dump_json())

    def item_ids(self, job: JobRecord) -> list[str]:
        ids: list[str] = []
        for chunk in range((job.total + ORDER_CHUNK - 1) // ORDER_CHUNK):
            ids.extend(self.get_json(f"order/{job.id}/{chunk}") or [])
        return ids

    def items(self, job: JobRecord) -> list[ItemRecord]:
        return [self.item(job.id, item_id) for item_id in self.item_ids(job)]

    # ----------------------------------------------------------------- events

    def last_seq(self) -> int:
        value: int = self.cache.get("seq", 0)
        return value

    def append_event(self, event: Event) -> None:
        self.append_events([event])

    def append_events(self, events: list[Event]) -> None:
        """Add events (numbered on from the last seq, in order) to the log."""
        for event in events:
            self.cache.set(f"event/{event.seq:012d}", event.model_dump_json())
        if events:
            self.cache.set("seq", events[-1].seq)

    def events(self, after: int, job_id: str | None, limit: int) -> tuple[list[Event], int]:
        """Events after `after` (of one job, or all), oldest first, and the last seq looked at:
        a reader that asks again from there misses nothing and sees nothing twice."""
        found: list[Event] = []
        last = self.last_seq()
        for seq in range(after + 1, last + 1):
            text = self.cache.get(f"event/{seq:012d}")
            if text is None:
                continue
            event = parse_event(text)
            if job_id is None or event.job_id == job_id:
                found.append(event)
                if len(found) >= limit:
                    return found, seq
        return found, max(after, last)

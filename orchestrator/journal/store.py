"""Where the journal keeps its records: one SQLite database in the workspace's `journal/`.

```
meta(key, value)                 format -> 2, key/<key> -> newest job with that key,
                                 lock/<key> -> LockOwner (see locks.py)
jobs(n, id, record)              JobRecord headers in creation order (counts, flags, cost; no
                                 item list, so a commit never rewrites a list that grows)
items(job_id, id, idx, record)   ItemRecords; `idx` keeps the job's order
events(seq, job_id, record)      the event log, gapless; indexed by job for followers
webhook_undelivered(job_id, id, record)
                                 webhook messages not delivered (see `outbox.py`)
```

Records are JSON text. A commit touches the job header, the items it changes and the events it
appends, whatever the job's size. Writes run in `writing()` (`BEGIN IMMEDIATE`: one writer at a
time across processes); a consistent read of many records runs in `reading()`, one deferred read
transaction that sees a single committed state. The database is in WAL mode, so readers never
block the writer and a reader in another process sees only committed state (connections and
transactions: `database.py`).

The journal first lived in diskcache; measured, its key-value layer cost a SELECT, an UPDATE and
trigger writes for every value set, 3.3 ms a verb. Plain tables do the same work in a fraction.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ..errors import JournalError, NotFoundError, storage_errors
from ..events import Event, parse_event
from ..records import ItemRecord, JobRecord
from .database import Database

__all__ = ["FORMAT", "Store"]

FORMAT = 2
WRITTEN_KEPT = 1024
"""Items whose last text a store keeps parsed (see `Store._written`)."""
DATABASE = "journal.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,
                                 record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (job_id TEXT NOT NULL, id TEXT NOT NULL, idx INTEGER NOT NULL,
                                  record TEXT NOT NULL, PRIMARY KEY (job_id, id));
CREATE INDEX IF NOT EXISTS items_in_order ON items (job_id, idx);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, job_id TEXT NOT NULL,
                                   record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_of_job ON events (job_id, seq);
CREATE TABLE IF NOT EXISTS webhook_undelivered (job_id TEXT NOT NULL, id TEXT NOT NULL,
                                                record TEXT NOT NULL, PRIMARY KEY (job_id, id));
"""


class Store(Database):
    """Typed reads and writes of the journal's records; one connection per thread."""

    def __init__(self, directory: Path) -> None:
        with storage_errors(directory.parent):
            directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        super().__init__(directory / DATABASE)
        self._headers: dict[str, tuple[str, JobRecord]] = {}
        """The last job header text seen per job, parsed: a commit reads what it wrote before."""
        self._written: dict[tuple[str, str], tuple[str, ItemRecord]] = {}
        """The items this store wrote or read one by one last, with their text: the next verb
        on an item in flight reads what was written, and is spared parsing it (records are
        frozen); so is a runner's first verb on an item its reader thread has just read."""
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        if any(self.directory.glob("cache.db*")):
            raise JournalError(
                f"the journal in {self.directory} was written by an older imagebatch (format "
                "1); finish its jobs with that version, or move the workspace aside"
            )
        if self._current_format() == FORMAT:
            return  # no write: a process paused inside a transaction does not block a reader
        with self.writing():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._con.execute(statement)
            found = self.get_json("format")
            if found is None:
                self.put_json("format", FORMAT)
            elif found != FORMAT:
                raise JournalError(f"the journal in {self.directory} has format {found}")

    def _current_format(self) -> Any:
        """The journal's format, read without taking the write lock; None for a new one."""
        try:
            with self.reading():
                return self.get_json("format")
        except sqlite3.OperationalError:  # no tables yet
            return None

    # -------------------------------------------------------------- raw values

    def get_json(self, key: str) -> Any:
        text = self._one("SELECT value FROM meta WHERE key = ?", key)
        return None if text is None else json.loads(text)

    def put_json(self, key: str, value: Any) -> None:
        text = json.dumps(value, separators=(",", ":"))
        self._con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, text))

    def meta_text(self, key: str) -> str | None:
        """A `meta` value as stored (JSON text), unparsed."""
        return self._one("SELECT value FROM meta WHERE key = ?", key)

    def delete(self, key: str) -> bool:
        return self._con.execute("DELETE FROM meta WHERE key = ?", (key,)).rowcount > 0

    # ------------------------------------------------------------------- jobs

    def job(self, job_id: str) -> JobRecord:
        return self._job_from(job_id, self._one("SELECT record FROM jobs WHERE id = ?", job_id))

    def _job_from(self, job_id: str, text: str | None) -> JobRecord:
        if text is None:
            raise NotFoundError(f"job {job_id!r} not found in this workspace", option="list_jobs")
        seen = self._headers.get(job_id)
        if seen is not None and seen[0] == text:
            return seen[1]
        job = JobRecord.model_validate_json(text)
        self._headers[job_id] = (text, job)
        return job

    def put_job(self, job: JobRecord) -> None:
        text = job.model_dump_json()
        self._con.execute("UPDATE jobs SET record = ? WHERE id = ?", (text, job.id))
        self._headers[job.id] = (text, job)

    def run_view(
        self, job_id: str, lock_key: str, item_id: str | None
    ) -> tuple[JobRecord, str | None, ItemRecord | None]:
        """What a runner's verb reads, in one statement: the job, the text of its key's lock,
        and the item (if one is named)."""
        row = self._con.execute(
            "SELECT (SELECT record FROM jobs WHERE id = ?),"
            " (SELECT value FROM meta WHERE key = ?),"
            " (SELECT record FROM items WHERE job_id = ? AND id = ?)",
            (job_id, lock_key, job_id, item_id or ""),
        ).fetchone()
        job = self._job_from(job_id, row[0])
        if item_id is not None and row[2] is None:
            raise NotFoundError(f"job {job_id!r} has no item {item_id!r}")
        item = None if item_id is None else self._item_from(job_id, item_id, row[2])
        return job, row[1], item

    def _item_from(self, job_id: str, item_id: str, text: str) -> ItemRecord:
        written = self._written.get((job_id, item_id))
        if written is not None and written[0] == text:
            return written[1]
        item = ItemRecord.model_validate_json(text)
        self._keep(item, text)
        return item

    def _keep(self, item: ItemRecord, text: str) -> None:
        if len(self._written) >= WRITTEN_KEPT:
            self._written.clear()  # a run has at most its concurrency in flight
        self._written[(item.job_id, item.id)] = (text, item)

    def jobs(self) -> list[JobRecord]:
        rows = self._con.execute("SELECT record FROM jobs ORDER BY n").fetchall()
        return [JobRecord.model_validate_json(row[0]) for row in rows]

    def job_ids(self) -> list[str]:
        return [row[0] for row in self._con.execute("SELECT id FROM jobs ORDER BY n")]

    def add_job(self, job: JobRecord, items: list[ItemRecord]) -> None:
        """Record a new job's header and its items, in their order."""
        self._con.execute(
            "INSERT INTO jobs (id, record) VALUES (?, ?)", (job.id, job.model_dump_json())
        )
        self._con.executemany(
            "INSERT INTO items (job_id, id, idx, record) VALUES (?, ?, ?, ?)",
            [(job.id, item.id, item.index, item.model_dump_json()) for item in items],
        )
        self.put_json(f"key/{job.key}", job.id)

    def newest_job_id(self, key: str) -> str | None:
        found: str | None = self.get_json(f"key/{key}")
        return found

    # ------------------------------------------------------------------ items

    def item(self, job_id: str, item_id: str) -> ItemRecord:
        text = self._one("SELECT record FROM items WHERE job_id = ? AND id = ?", job_id, item_id)
        if text is None:
            raise NotFoundError(f"job {job_id!r} has no item {item_id!r}")
        return self._item_from(job_id, item_id, text)

    def put_item(self, item: ItemRecord) -> None:
        text = item.model_dump_json()
        self._con.execute(
            "UPDATE items SET record = ? WHERE job_id = ? AND id = ?", (text, item.job_id, item.id)
        )
        self._keep(item, text)

    def items(self, job: JobRecord) -> list[ItemRecord]:
        rows = self._con.execute(
            "SELECT record FROM items WHERE job_id = ? ORDER BY idx", (job.id,)
        ).fetchall()
        return [ItemRecord.model_validate_json(row[0]) for row in rows]

    # ----------------------------------------------------------------- events

    def last_seq(self) -> int:
        """The last event's seq (read once per write transaction: only it appends then)."""
        memo = self.memo()
        if memo is not None and "seq" in memo:
            return int(memo["seq"])
        row = self._con.execute("SELECT max(seq) FROM events").fetchone()
        seq = int(row[0] or 0)
        if memo is not None:
            memo["seq"] = seq
        return seq

    def append_events(self, events: list[Event]) -> None:
        """Add events (numbered on from the last seq, in order) to the log."""
        if not events:
            return
        self._con.executemany(
            "INSERT INTO events (seq, job_id, record) VALUES (?, ?, ?)",
            [(event.seq, event.job_id, event.model_dump_json()) for event in events],
        )
        memo = self.memo()
        if memo is not None:
            memo["seq"] = events[-1].seq

    def append_event(self, event: Event) -> None:
        self.append_events([event])

    def events(self, after: int, job_id: str | None, limit: int) -> tuple[list[Event], int]:
        """Events after `after` (of one job, or all), oldest first, and the last seq looked at:
        a reader that asks again from there misses nothing and sees nothing twice."""
        last = self.last_seq()
        if job_id is None:
            sql, args = "SELECT seq, record FROM events WHERE seq > ?", (after,)
        else:
            sql = "SELECT seq, record FROM events WHERE job_id = ? AND seq > ?"
            args = (job_id, after)  # type: ignore[assignment]
        rows = self._con.execute(f"{sql} ORDER BY seq LIMIT ?", (*args, limit)).fetchall()
        found = [parse_event(row[1]) for row in rows]
        if len(found) >= limit:
            return found, int(rows[-1][0])
        return found, max(after, last)

"""The journal on disk: jobs and their keys, requests, one transaction per change, an event log
that other readers and processes can follow. The runner's verbs are in test_journal_runs.py."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import (
    ConfigError,
    JournalError,
    KeyConflictError,
    NotFoundError,
    TransitionError,
)
from orchestrator.events import (
    EventType,
    ItemCancelled,
    ItemCompleted,
    ItemReset,
    ItemStarted,
    JobCancelRequested,
    JobCreated,
    JobStarted,
)
from orchestrator.journal import DiskJournal, ProcessedImage, RawImage, RunJournal
from orchestrator.journal.store import Store
from orchestrator.records import ErrorInfo, JobSnapshot
from orchestrator.spec import JobSpec, parse_spec
from orchestrator.states import ItemStatus, JobStatus
from orchestrator.testing.clock import FakeClock

RAW = RawImage(
    path="raw/x.png",
    sha256="0" * 64,
    mime_type="image/png",
    bytes=100,
    width=64,
    height=64,
    model="m",
    cost_usd=0.04,
)
DONE = ProcessedImage(image_path="images/x.png", thumb_path="thumbs/x.jpg", width=64, height=64)
BOOM = ErrorInfo(kind="unavailable", message="503 from the provider", retryable=True)


def make_spec(key: str = "k", count: int = 3, prompt: str = "a prompt") -> JobSpec:
    return parse_spec(
        {
            "key": key,
            "defaults": {"size": "64x64", "seed": 3},
            "items": [{"id": f"i{n}", "prompt": prompt} for n in range(count)],
        },
        "test",
    )


def state(disk: DiskJournal, job_id: str) -> tuple[JobSnapshot, int]:
    """Everything a change could touch: the job, its items, the event log's end."""
    return disk.snapshot(job_id), disk.last_seq()


def begin(disk: DiskJournal, count: int = 3, key: str = "k") -> RunJournal:
    """A job created with its key's lock, and its runner after `start`."""
    job, lease = disk.create_job(make_spec(key, count), lock=True)
    assert lease is not None
    run = RunJournal(disk, job.id, lease)
    run.start()
    return run


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def disk(tmp_path: Path, clock: FakeClock) -> Iterator[DiskJournal]:
    opened = DiskJournal(tmp_path / "journal", clock=clock)
    yield opened
    opened.close()


# -- creating -----------------------------------------------------------------------------------


def test_create_records_pending_items_with_merged_params(disk: DiskJournal) -> None:
    job, lease = disk.create_job(make_spec())
    assert lease is None
    assert job.status == JobStatus.PENDING and not job.active
    assert job.counts == {ItemStatus.PENDING: 3} and job.total == 3
    item = disk.item(job.id, "i1")
    assert item.params.size == "64x64" and item.params.seed == 3
    assert [item.id for item in disk.items(job.id)] == ["i0", "i1", "i2"]
    assert disk.jobs() == [job]
    events = disk.events()
    assert [e.type for e in events] == [EventType.JOB_CREATED]
    assert isinstance(events[0], JobCreated) and events[0].total == 3


def test_one_unfinished_job_per_key(disk: DiskJournal) -> None:
    first, _ = disk.create_job(make_spec("story"))
    with pytest.raises(KeyConflictError) as raised:
        disk.create_job(make_spec("story"))
    assert raised.value.job_id == first.id and first.id in str(raised.value)
    assert raised.value.exit_code == 5
    assert [job.id for job in disk.jobs()] == [first.id]  # the refused one left nothing
    disk.create_job(make_spec("another"))  # other keys are free
    assert disk.request_cancel(first.id).status == JobStatus.CANCELLED
    second, _ = disk.create_job(make_spec("story"))  # a finished job no longer holds its key
    assert disk.store.newest_job_id("story") == second.id


def test_create_with_lock_takes_the_lock_in_the_same_transaction(disk: DiskJournal) -> None:
    job, lease = disk.create_job(make_spec("story"), lock=True)
    assert lease is not None and lease.job_id == job.id
    assert disk.locks.holder("story") == lease
    assert disk.runner_live(job)


def test_a_refused_create_with_lock_leaves_no_job_behind(disk: DiskJournal) -> None:
    holder = disk.locks.acquire("story", "a-job-elsewhere")  # live: this process holds it
    with pytest.raises(KeyConflictError):
        disk.create_job(make_spec("story"), lock=True)
    assert disk.jobs() == []
    assert disk.store.newest_job_id("story") is None
    assert disk.last_seq() == 0
    assert disk.locks.holder("story") == holder


def test_a_create_that_fails_halfway_leaves_neither_job_nor_lock(
    disk: DiskJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(event: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(disk.store, "append_event", broken)
    with pytest.raises(OSError, match="disk full"):
        disk.create_job(make_spec("story"), lock=True)
    monkeypatch.undo()
    assert disk.jobs() == []
    assert disk.locks.holder("story") is None
    job, lease = disk.create_job(make_spec("story"), lock=True)  # no orphan blocks the key
    assert lease is not None and lease.job_id == job.id


def test_unknown_ids_are_not_found(disk: DiskJournal) -> None:
    with pytest.raises(NotFoundError):
        disk.job("nope")
    with pytest.raises(NotFoundError):
        disk.snapshot("nope")
    with pytest.raises(NotFoundError):
        disk.request_cancel("nope")
    job, _ = disk.create_job(make_spec())
    with pytest.raises(NotFoundError):
        disk.item(job.id, "nope")
    before = state(disk, job.id)
    with pytest.raises(NotFoundError):
        disk.cancel_items(job.id, ["i0", "nope"])
    assert state(disk, job.id) == before


# -- one transaction per change -------------------------------------------------------------------


def test_a_refused_transition_writes_nothing(disk: DiskJournal) -> None:
    run = begin(disk)
    before = state(disk, run.job_id)
    with pytest.raises(TransitionError, match="pending to completed"):
        run.complete("i0", DONE)  # i0 is pending: it never ran
    assert state(disk, run.job_id) == before


def test_a_refused_request_writes_not_even_the_allowed_part(disk: DiskJournal) -> None:
    run = begin(disk)
    run.fail("i0", BOOM)
    before = state(disk, run.job_id)
    with pytest.raises(ConfigError, match="'i1' is pending"):
        disk.request_retry(run.job_id, ["i0", "i1"])  # i0 could go back; i1 cannot
    assert state(disk, run.job_id) == before
    assert disk.item(run.job_id, "i0").status == ItemStatus.FAILED


def test_a_commit_that_fails_halfway_writes_nothing(
    disk: DiskJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    job, _ = disk.create_job(make_spec())
    before = state(disk, job.id)

    def broken(job: object) -> None:
        raise OSError("full")

    monkeypatch.setattr(disk.store, "put_job", broken)
    with pytest.raises(OSError, match="full"):
        disk.request_cancel(job.id)  # the items are written before the job header
    monkeypatch.undo()
    assert state(disk, job.id) == before


def test_job_status_is_derived_from_items(disk: DiskJournal) -> None:
    job, lease = disk.create_job(make_spec(count=2), lock=True)
    assert lease is not None
    run = RunJournal(disk, job.id, lease)
    assert disk.job(job.id).status == JobStatus.PENDING
    run.start()
    assert disk.job(job.id).status == JobStatus.RUNNING  # a runner is on it, nothing started
    for item_id in ("i0", "i1"):
        run.start_attempt(item_id)
        run.record_image(item_id, RAW)
    run.complete("i0", DONE)
    assert disk.job(job.id).status == JobStatus.RUNNING
    run.fail("i1", ErrorInfo(kind="postprocess", message="bad pixels"))
    job = disk.job(job.id)
    assert job.status == JobStatus.PARTIAL
    assert job.counts == {ItemStatus.COMPLETED: 1, ItemStatus.FAILED: 1}
    assert job.finished_at is not None
    assert job.cost_usd == pytest.approx(0.08)
    disk.request_retry(job.id, ["i1"])
    job = disk.job(job.id)
    assert job.status == JobStatus.RUNNING and job.finished_at is None
    assert job.cost_usd == pytest.approx(0.08)  # the paid image is kept
    run.finish(1.0, interrupted=True)
    assert disk.job(job.id).status == JobStatus.PENDING  # resumable: nobody runs it


def test_an_id_named_twice_is_changed_once(disk: DiskJournal) -> None:
    job, _ = disk.create_job(make_spec())
    assert disk.cancel_items(job.id, ["i0", "i0"]) == ["i0"]
    job = disk.job(job.id)
    assert job.counts == {ItemStatus.PENDING: 2, ItemStatus.CANCELLED: 1}
    assert disk.request_retry(job.id, ["i0", "i0"]) == ["i0"]
    job = disk.job(job.id)
    assert job.counts == {ItemStatus.PENDING: 3}
    kinds = [type(event) for event in disk.events(after=1)]
    assert kinds == [ItemCancelled, JobCancelRequested, ItemReset]


# -- events -------------------------------------------------------------------------------------


def test_events_are_gapless_and_readable_by_a_second_reader(
    disk: DiskJournal, tmp_path: Path
) -> None:
    run = begin(disk)
    run.start_attempt("i0")
    disk.create_job(make_spec("other"))
    reader = DiskJournal(tmp_path / "journal")
    try:
        seqs = [event.seq for event in reader.events()]
        assert seqs == list(range(1, disk.last_seq() + 1))
        assert reader.item(run.job_id, "i0").status == ItemStatus.RUNNING
        assert [e.seq for e in reader.events(after=1)] == seqs[1:]
        mine = reader.events(job_id=run.job_id)
        assert [type(e) for e in mine] == [JobCreated, JobStarted, ItemStarted]
        assert all(e.job_id == run.job_id for e in mine)
    finally:
        reader.close()


def test_events_since_says_how_far_it_read(disk: DiskJournal) -> None:
    run = begin(disk)  # events 1 (created) and 2 (started)
    other, _ = disk.create_job(make_spec("other"))  # 3
    events, covered = disk.events_since(0, run.job_id)
    assert [e.seq for e in events] == [1, 2] and covered == 3  # 3 was read, and skipped
    assert disk.events_since(covered, run.job_id) == ([], 3)
    run.start_attempt("i0")  # 4
    disk.cancel_items(other.id, ["i0"])  # 5, 6
    run.start_attempt("i1")  # 7
    events, covered = disk.events_since(covered, run.job_id)
    assert [e.seq for e in events] == [4, 7] and covered == 7


def test_events_since_with_a_limit_misses_nothing_and_repeats_nothing(disk: DiskJournal) -> None:
    run = begin(disk, count=5)
    for n in range(5):
        run.start_attempt(f"i{n}")
    seen: list[int] = []
    covered = 0
    while True:
        events, covered = disk.events_since(covered, limit=2)
        if not events:
            break
        assert len(events) <= 2
        seen.extend(event.seq for event in events)
    assert seen == list(range(1, disk.last_seq() + 1))


def test_another_process_sees_committed_state(disk: DiskJournal, tmp_path: Path) -> None:
    run = begin(disk)
    run.start_attempt("i2")
    script = (
        "import sys; from pathlib import Path; from orchestrator.journal import DiskJournal; "
        "j = DiskJournal(Path(sys.argv[1])); "
        "print(j.item(sys.argv[2], 'i2').status, j.last_seq(), "
        "','.join(str(e.seq) for e in j.events()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "journal"), run.job_id],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    last = disk.last_seq()
    assert out == ["running", str(last), ",".join(str(n) for n in range(1, last + 1))]


def test_large_values_stay_inside_the_database(disk: DiskJournal, tmp_path: Path) -> None:
    # 32,000 two-byte characters: every record stays inside the one database (a record kept as
    # a file beside it could be lost by a rolled-back transaction).
    job, _ = disk.create_job(make_spec(prompt="é" * 32_000, count=2))
    disk.cancel_items(job.id, ["i0"])
    files = [p.name for p in (tmp_path / "journal").rglob("*") if p.is_file()]
    assert all(name.startswith("journal.sqlite3") for name in files), files
    assert disk.item(job.id, "i0").prompt == "é" * 32_000


def test_a_journal_of_another_format_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "journal")
    with store.writing():
        store.put_json("format", 3)
    store.close()
    with pytest.raises(JournalError, match="has format 3"):
        DiskJournal(tmp_path / "journal")
    # a workspace of the first (diskcache) journal is refused with a way out, not misread
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "cache.db").write_bytes(b"")
    with pytest.raises(JournalError, match="older imagebatch"):
        DiskJournal(tmp_path / "old")


def test_completed_events_carry_the_image(disk: DiskJournal) -> None:
    run = begin(disk, count=1)
    run.start_attempt("i0")
    run.record_image("i0", RAW)
    run.complete("i0", DONE)
    last = disk.events()[-1]
    assert isinstance(last, ItemCompleted)
    assert (last.item_id, last.status, last.image_path) == ("i0", "completed", "images/x.png")


def test_a_write_nested_in_a_read_is_refused_before_sqlite_can_fail_it(tmp_path: Path) -> None:
    """A read transaction that turns into a write cannot wait for the write lock: if another
    connection commits in between, SQLite fails it at once ("database is locked"). The store
    refuses the nesting itself, every time, so no code path can rely on it by luck."""
    store, other = Store(tmp_path / "journal"), Store(tmp_path / "journal")
    with store.writing():
        store.put_json("n", 0)
    with store.reading():
        assert store.get_json("n") == 0
        with other.writing():
            other.put_json("n", 1)  # another writer commits while the read is open
        with pytest.raises(RuntimeError, match="write inside a read"), store.writing():
            store.put_json("n", 2)
    with store.writing():  # the store is usable after
        store.put_json("n", 3)
    assert other.get_json("n") == 3
    store.close()
    other.close()


def test_a_verb_on_an_item_just_read_does_not_parse_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner reads each item (its reader thread), then starts its attempt (the writer): the
    record read is the one the verb's transaction finds, so it is parsed once, not twice."""
    from orchestrator.records import ItemRecord

    disk = DiskJournal(tmp_path / "journal")
    job, owner = disk.create_job(make_spec(count=2), lock=True)
    assert owner is not None
    run = RunJournal(disk, job.id, owner)
    run.start()
    parsed: list[str] = []
    real = ItemRecord.model_validate_json

    def counting(text: str | bytes, **options: object) -> ItemRecord:
        parsed.append(str(text)[:20])
        return real(text)

    monkeypatch.setattr(ItemRecord, "model_validate_json", counting)
    read = disk.item(job.id, "i1")
    started = run.start_attempt("i1")
    assert read.status == ItemStatus.PENDING and started not in (None, "wait")
    assert len(parsed) == 1, parsed
    disk.close()

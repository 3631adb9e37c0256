"""The journal: one writer, atomic changes, ordered events, readable by other processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import JournalError, KeyConflictError, NotFoundError, TransitionError
from orchestrator.journal import ItemChange, Journal, attempt_started
from orchestrator.records import EventType
from orchestrator.spec import JobSpec, parse_spec
from orchestrator.states import ItemStatus, JobStatus


def spec(key: str = "k", count: int = 3, prompt: str = "a prompt") -> JobSpec:
    return parse_spec(
        {
            "key": key,
            "defaults": {"size": "64x64", "seed": 3},
            "items": [{"id": f"i{n}", "prompt": prompt} for n in range(count)],
        },
        "test",
    )


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    opened = Journal(tmp_path / "journal")
    yield opened
    opened.close()


def snapshot(journal: Journal, job_id: str) -> tuple[object, ...]:
    return (journal.job(job_id), tuple(journal.items(job_id)), journal.last_seq())


def test_create_records_pending_items_with_merged_params(journal: Journal) -> None:
    job = journal.create_job(spec())
    assert job.status == JobStatus.PENDING
    assert job.counts == {ItemStatus.PENDING: 3}
    item = journal.item(job.id, "i1")
    assert item.params.size == "64x64" and item.params.seed == 3
    assert [e.type for e in journal.events()] == [EventType.JOB_CREATED]


def test_a_refused_transition_writes_nothing(journal: Journal) -> None:
    job = journal.create_job(spec())
    before = snapshot(journal, job.id)
    good = ItemChange("i0", EventType.ITEM_STARTED, ItemStatus.RUNNING)
    bad = ItemChange("i1", EventType.ITEM_COMPLETED, ItemStatus.COMPLETED)  # pending -> completed
    with pytest.raises(TransitionError):
        journal.update_items(job.id, [good, bad])
    assert snapshot(journal, job.id) == before  # not even the allowed half


def test_unknown_fields_are_refused(journal: Journal) -> None:
    job = journal.create_job(spec())
    with pytest.raises(JournalError):
        journal.update_item(job.id, "i0", EventType.ITEM_GENERATED, image_bytes=b"x")


def test_job_status_is_derived_from_items(journal: Journal) -> None:
    job = journal.create_job(spec(count=2))
    journal.update_job(job.id, EventType.JOB_STARTED, active=True)
    for item_id, end in (("i0", ItemStatus.COMPLETED), ("i1", ItemStatus.FAILED)):
        journal.update_item(job.id, item_id, EventType.ITEM_STARTED, to=ItemStatus.RUNNING)
        assert journal.job(job.id).status == JobStatus.RUNNING
        journal.update_item(job.id, item_id, EventType.ITEM_FAILED, to=end, cost_usd=0.04)
    job = journal.job(job.id)
    assert job.status == JobStatus.PARTIAL
    assert job.finished_at is not None
    assert job.cost_usd == pytest.approx(0.08)
    journal.update_item(job.id, "i1", EventType.ITEM_RESET, to=ItemStatus.PENDING)
    job = journal.job(job.id)
    assert job.status == JobStatus.RUNNING and job.finished_at is None


def test_recover_puts_running_items_back_with_an_interrupted_attempt(journal: Journal) -> None:
    job = journal.create_job(spec())
    item = journal.item(job.id, "i0")
    journal.update_item(
        job.id,
        "i0",
        EventType.ITEM_STARTED,
        to=ItemStatus.RUNNING,
        attempts=attempt_started(item, 1.0),
    )
    assert journal.recover(job.id) == ["i0"]
    item = journal.item(job.id, "i0")
    assert item.status == ItemStatus.PENDING
    assert item.attempts[-1].outcome == "interrupted"


def test_only_from_skips_items_in_other_states(journal: Journal) -> None:
    job = journal.create_job(spec(count=2))
    journal.update_item(job.id, "i0", EventType.ITEM_STARTED, to=ItemStatus.RUNNING)
    change = ItemChange(
        "i0",
        EventType.ITEM_CANCELLED,
        ItemStatus.CANCELLED,
        only_from=frozenset({ItemStatus.PENDING}),
    )
    journal.update_items(job.id, [change])
    assert journal.item(job.id, "i0").status == ItemStatus.RUNNING


def test_one_active_job_per_key(journal: Journal) -> None:
    first = journal.create_job(spec("story"))
    with pytest.raises(KeyConflictError) as raised:
        journal.create_job(spec("story"))
    assert raised.value.job_id == first.id and first.id in str(raised.value)
    journal.create_job(spec("another"))  # other keys are free
    for item_id in first.item_ids:
        journal.update_item(first.id, item_id, EventType.ITEM_CANCELLED, to=ItemStatus.CANCELLED)
    journal.create_job(spec("story"))  # a finished job no longer holds its key


def test_unknown_ids_are_not_found(journal: Journal) -> None:
    with pytest.raises(NotFoundError):
        journal.job("nope")
    job = journal.create_job(spec())
    with pytest.raises(NotFoundError):
        journal.item(job.id, "nope")


def test_events_are_gapless_and_readable_by_a_second_reader(
    journal: Journal, tmp_path: Path
) -> None:
    job = journal.create_job(spec())
    journal.update_item(job.id, "i0", EventType.ITEM_STARTED, to=ItemStatus.RUNNING)
    reader = Journal(tmp_path / "journal")
    try:
        seqs = [event.seq for event in reader.events()]
        assert seqs == list(range(1, journal.last_seq() + 1))
        assert reader.item(job.id, "i0").status == ItemStatus.RUNNING
        assert [e.seq for e in reader.events(after=1)] == seqs[1:]
    finally:
        reader.close()


def test_another_process_sees_committed_state(journal: Journal, tmp_path: Path) -> None:
    job = journal.create_job(spec())
    journal.update_item(job.id, "i2", EventType.ITEM_STARTED, to=ItemStatus.RUNNING)
    script = (
        "import sys; from pathlib import Path; from orchestrator.journal import Journal; "
        "j = Journal(Path(sys.argv[1])); print(j.item(sys.argv[2], 'i2').status, j.last_seq())"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "journal"), job.id],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert out == ["running", str(journal.last_seq())]


def test_large_values_stay_inside_the_database(journal: Journal, tmp_path: Path) -> None:
    # 32,000 two-byte characters: diskcache would store this item as a separate file, which a
    # rolled-back transaction can lose; the journal keeps every value inline.
    job = journal.create_job(spec(prompt="é" * 32_000, count=2))
    journal.update_item(job.id, "i0", EventType.ITEM_STARTED, to=ItemStatus.RUNNING)
    files = [p.name for p in (tmp_path / "journal").rglob("*") if p.is_file()]
    assert all(name.startswith("cache.db") for name in files), files
    assert journal.item(job.id, "i0").prompt == "é" * 32_000


def test_two_changes_to_one_item_in_one_commit_apply_in_turn(journal: Journal) -> None:
    job = journal.create_job(spec(count=2))
    reset = ItemChange(
        "i0", EventType.ITEM_STARTED, ItemStatus.RUNNING, only_from=frozenset({ItemStatus.PENDING})
    )
    job = journal.update_items(job.id, [reset, reset])  # the second finds it running: skipped
    assert job.counts == {ItemStatus.PENDING: 1, ItemStatus.RUNNING: 1}
    assert sum(job.counts.values()) == job.total

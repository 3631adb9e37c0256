"""The journal's writer thread: calls grouped into one transaction, each undone alone if it fails,
callers that gave up skipped, and the thread still serving after all of that."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from orchestrator.journal.store import Store
from orchestrator.journal.writer import Writer


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "journal")
    yield opened
    opened.close()


def _put(store: Store, key: str, fail: bool = False) -> str:
    store.put_json(key, "written")
    if fail:
        raise ValueError(f"{key} refused")
    return key


def test_waiting_calls_share_one_transaction_and_a_failure_is_undone_alone(store: Store) -> None:
    writer = Writer(store)
    started, gate = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        gate.wait()

    blocker = writer.submit(hold)  # holds the writer while the others queue up
    assert started.wait(timeout=10)
    futures = [writer.submit(_put, store, f"k{n}", fail=(n == 2)) for n in range(5)]
    gate.set()
    blocker.result(timeout=10)
    results = [future.exception(timeout=10) or future.result() for future in futures]
    writer.shutdown()
    assert results[:2] == ["k0", "k1"] and results[3:] == ["k3", "k4"]
    assert isinstance(results[2], ValueError)
    assert [store.get_json(f"k{n}") for n in range(5)] == [
        "written",
        "written",
        None,  # its own write was rolled back, the others committed
        "written",
        "written",
    ]
    assert writer.batches == 2, "the five waiting calls went in one transaction"


def test_a_call_cancelled_before_it_ran_is_skipped_and_the_writer_goes_on(store: Store) -> None:
    writer = Writer(store)
    gate = threading.Event()
    writer.submit(gate.wait)
    given_up: Future[str] = writer.submit(_put, store, "skipped")
    assert given_up.cancel()  # the caller left (its task was cancelled) before the call ran
    later = writer.submit(_put, store, "later")
    gate.set()
    assert later.result(timeout=10) == "later"
    writer.shutdown()
    assert store.get_json("skipped") is None and store.get_json("later") == "written"


def _put_in_writing(store: Store, key: str, fail: bool = False) -> str:
    """A call shaped as a journal verb: its writes in its own `writing()`."""
    with store.writing():
        return _put(store, key, fail)


def _queued_behind_a_held_writer(store: Store, calls: list[tuple[str, bool]]) -> list[object]:
    """Run `calls` (`_put_in_writing` keys and whether each fails) in one batch, and return
    each one's result or error, and the SQL statements the writer's thread ran for them
    (after the held call's own commit)."""
    writer = Writer(store)
    statements: list[str] = []
    started, gate = threading.Event(), threading.Event()

    def hold() -> None:
        store.trace(statements.append)  # the writer thread's own connection
        started.set()
        gate.wait()

    blocker = writer.submit(hold)
    assert started.wait(timeout=10)
    futures = [writer.submit(_put_in_writing, store, key, fail) for key, fail in calls]
    gate.set()
    blocker.result(timeout=10)
    results = [future.exception(timeout=10) or future.result() for future in futures]
    writer.shutdown()
    held_commit = [s.upper() for s in statements].index("COMMIT")  # the held call's own
    return [*results, statements[held_commit + 1 :]]


def test_a_batch_whose_verbs_all_succeed_runs_no_savepoint(store: Store) -> None:
    *results, statements = _queued_behind_a_held_writer(store, [(f"k{n}", False) for n in range(4)])
    assert results == ["k0", "k1", "k2", "k3"]
    assert [store.get_json(f"k{n}") for n in range(4)] == ["written"] * 4
    assert isinstance(statements, list)
    assert [s for s in statements if "SAVEPOINT" in s.upper()] == [], statements
    assert sum(1 for s in statements if s.upper().startswith("COMMIT")) == 1


def test_a_verb_that_fails_in_a_batch_is_undone_alone_and_the_others_commit_once(
    store: Store,
) -> None:
    calls = [("a", False), ("b", True), ("c", False)]
    *results, statements = _queued_behind_a_held_writer(store, calls)
    assert results[0] == "a" and results[2] == "c"
    assert isinstance(results[1], ValueError)
    assert [store.get_json(key) for key in "abc"] == ["written", None, "written"]
    assert isinstance(statements, list)
    commits = [s for s in statements if s.upper().startswith(("COMMIT", "ROLLBACK"))]
    assert commits[:1] == ["ROLLBACK"], "the unguarded try was undone whole"
    assert [s for s in commits if s.upper() == "COMMIT"] == ["COMMIT"]
    assert store.get_json("a") == "written", "a verb before the failing one is not lost"


def test_a_batch_of_verbs_reads_the_last_seq_once_and_numbers_events_without_gaps(
    tmp_path: Path,
) -> None:
    from orchestrator.journal import DiskJournal, RunJournal

    from .test_journal import make_spec

    disk = DiskJournal(tmp_path / "journal")
    job, owner = disk.create_job(make_spec(count=4), lock=True)
    assert owner is not None
    run = RunJournal(disk, job.id, owner)
    run.start()
    writer = Writer(disk.store)
    statements: list[str] = []
    started, gate = threading.Event(), threading.Event()

    def hold() -> None:
        disk.store.trace(statements.append)
        started.set()
        gate.wait()

    writer.submit(hold)
    assert started.wait(timeout=10)
    calls = [writer.submit(run.start_attempt, f"i{n}") for n in range(3)]
    gate.set()
    assert all(future.result(timeout=10) is not None for future in calls)
    reads = [s for s in statements if "max(seq)" in s]
    assert len(reads) == 1, reads

    # a verb that fails in a batch is undone with what it read: the others' events stay gapless
    gate.clear()
    started.clear()
    writer.submit(hold)
    assert started.wait(timeout=10)
    calls = [
        writer.submit(run.start_attempt, "i3"),
        writer.submit(run.start_attempt, "no-such-item"),
        writer.submit(run.stop, "i0", cancelled=True),
    ]
    gate.set()
    assert calls[0].result(timeout=10) is not None and calls[2].result(timeout=10) is not None
    assert calls[1].exception(timeout=10) is not None
    writer.shutdown()
    seqs = [event.seq for event in disk.events()]
    assert seqs == list(range(1, len(seqs) + 1))
    disk.close()

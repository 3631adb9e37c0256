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

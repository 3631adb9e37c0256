"""The async journal: verbs and reads run on the journal's own threads, never on the event loop,
and the events of each commit reach the in-process bus in the order they were committed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.bus import EventBus, Subscription
from orchestrator.errors import LeaseLostError
from orchestrator.events import Event
from orchestrator.journal import Journal
from orchestrator.locks import keep_alive
from orchestrator.states import ItemStatus, JobStatus
from orchestrator.testing.clock import FakeClock

from .test_journal import BOOM, DONE, RAW, make_spec


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
async def journal(tmp_path: Path, bus: EventBus) -> AsyncIterator[Journal]:
    opened = Journal(tmp_path / "journal", bus=bus)
    yield opened
    opened.close()


def _threads_of(target: Any, name: str, seen: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Note the name of the thread each call of `target.name` runs on."""
    real: Callable[..., Any] = getattr(target, name)

    def noted(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, noted)


async def _collect(subscription: Subscription, last: int) -> list[Event]:
    events: list[Event] = []
    while not events or events[-1].seq < last:
        async with asyncio.timeout(5.0):
            events.append(await subscription.get())
    return events


async def test_committed_events_reach_the_bus_in_seq_order(journal: Journal, bus: EventBus) -> None:
    subscription = bus.subscribe()
    job, lease = await journal.create_job(make_spec(count=6), lock=True)
    assert lease is not None
    run = journal.run(job.id, lease)
    await run.start()
    # Verbs issued together still commit, and publish, one after another.
    await asyncio.gather(*(run.start_attempt(f"i{n}") for n in range(4)))
    await asyncio.gather(run.fail("i0", BOOM), run.record_image("i1", RAW))
    await journal.cancel_items(job.id, ["i2", "i4"])
    await run.complete("i1", DONE)
    await journal.request_cancel(job.id)
    last = journal.disk.last_seq()
    published = await _collect(subscription, last)
    assert [event.seq for event in published] == list(range(1, last + 1))
    assert published == journal.disk.events()  # the same events the log holds
    assert subscription.get_nowait() is None


async def test_the_events_of_commits_made_while_the_loop_is_busy_go_in_one_trip(
    journal: Journal, bus: EventBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each trip to the loop is a handle and a write to its wake-up socket, and wakes every
    follower of the bus: the commits made before the loop's turn comes share one."""
    subscription = bus.subscribe()
    job, lease = await journal.create_job(make_spec(count=6), lock=True)
    assert lease is not None
    run = journal.run(job.id, lease)
    await run.start()
    first = journal.disk.last_seq()
    loop = asyncio.get_running_loop()
    trips: list[object] = []
    real = loop.call_soon_threadsafe

    def counted(callback: Any, *args: Any, **kwargs: Any) -> Any:
        if "publish" in getattr(callback, "__name__", ""):
            trips.append(callback)
        return real(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    starts = [run.start_attempt(f"i{n}") for n in range(6)]  # queued on the writer at once
    writes = [asyncio.ensure_future(start) for start in starts]
    await asyncio.sleep(0)  # each task asks for its verb...
    await asyncio.sleep(0)  # ...and the turn's verbs go to the writer's queue together
    while journal.disk.last_seq() < first + 6:  # the loop is busy meanwhile: it never turns
        time.sleep(0.01)  # noqa: ASYNC251  # blocking the loop is the point
    await asyncio.gather(*writes)
    assert len(trips) == 1
    published = await _collect(subscription, first + 6)
    assert [event.seq for event in published] == list(range(1, first + 7))
    assert subscription.get_nowait() is None


async def test_commits_and_reads_do_not_run_on_the_loop_thread(
    journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[str] = []
    reads: list[str] = []
    for name in ("put_item", "put_job", "append_event"):
        _threads_of(journal.disk.store, name, writes, monkeypatch)
    _threads_of(journal.disk.store, "items", reads, monkeypatch)
    job, lease = await journal.create_job(make_spec(), lock=True)
    assert lease is not None
    run = journal.run(job.id, lease)
    await run.start()
    await run.start_attempt("i0")
    await journal.request_retry(job.id, [])
    assert await journal.heartbeat(lease)
    reads.clear()
    snapshot = await journal.snapshot(job.id)
    assert snapshot.job.counts == {ItemStatus.PENDING: 2, ItemStatus.RUNNING: 1}
    loop_thread = threading.current_thread().name
    assert writes and all(name.startswith("journal-write") for name in writes), writes
    assert reads and all(name.startswith("journal-read") for name in reads), reads
    assert loop_thread not in writes + reads


async def test_a_runner_that_lost_its_lease_is_refused_through_the_facade(
    journal: Journal,
) -> None:
    job, lease = await journal.create_job(make_spec(), lock=True)
    assert lease is not None
    run = journal.run(job.id, lease)
    await run.start()
    await run.start_attempt("i0")
    assert await journal.clear_lock(job.key) == lease
    seq = journal.disk.last_seq()
    with pytest.raises(LeaseLostError, match="was cleared"):
        await run.complete("i0", DONE)
    assert journal.disk.last_seq() == seq
    assert (await journal.item(job.id, "i0")).status == ItemStatus.RUNNING


async def test_keep_alive_through_the_journal_stops_when_the_lock_is_cleared(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    journal = Journal(tmp_path / "journal", clock=clock)
    try:
        job, lease = await journal.create_job(make_spec(), lock=True)
        assert lease is not None
        beats = asyncio.create_task(keep_alive(journal, lease, 10.0, clock))
        for _ in range(1000):  # a few heartbeats go through the writer thread
            await asyncio.sleep(0)
            holder = await journal.holder(job.key)
            if holder is not None and holder.heartbeat_at > lease.heartbeat_at:
                break
        assert holder is not None and holder.heartbeat_at > lease.heartbeat_at
        assert not beats.done()
        await journal.clear_lock(job.key)
        with pytest.raises(LeaseLostError, match="was cleared"):
            async with asyncio.timeout(5.0):
                await beats
    finally:
        journal.close()


async def test_close_ends_the_threads_and_the_state_stays(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal")
    job, _ = await journal.create_job(make_spec())
    await journal.cancel_items(job.id, ["i0"])
    assert (await journal.job(job.id)).counts[ItemStatus.CANCELLED] == 1
    threads = [
        await journal.write(threading.current_thread),
        await journal.read(threading.current_thread),
    ]
    assert all(thread.is_alive() for thread in threads)
    journal.close()
    assert not any(thread.is_alive() for thread in threads)
    again = Journal(tmp_path / "journal")
    try:
        reopened = await again.job(job.id)
        assert reopened.status == JobStatus.PENDING
        assert reopened.counts == {ItemStatus.PENDING: 2, ItemStatus.CANCELLED: 1}
    finally:
        again.close()


def test_events_left_behind_by_a_loop_that_closed_go_with_the_next_loop_s_trip(
    tmp_path: Path,
) -> None:
    """A trip to a loop that closed before it ran never comes: the events it was to take go
    with the next commit's trip, on the loop the journal is used from then."""
    seen: list[object] = []

    class Sink:
        def publish(self, event: Event) -> None:
            seen.append(event)

    journal = Journal(tmp_path / "journal", bus=Sink())
    try:
        old = asyncio.new_event_loop()
        journal._loop = old
        journal._committed(["first"])  # type: ignore[list-item]
        old.close()  # before its turn: the trip is dropped with it

        async def later() -> None:
            journal._loop = asyncio.get_running_loop()
            journal._committed(["second"])  # type: ignore[list-item]
            await asyncio.sleep(0)

        asyncio.run(later())
        assert seen == ["first", "second"]
    finally:
        journal.close()


async def test_a_run_makes_its_lease_check_once_and_it_still_tells_a_lost_lease(
    journal: Journal,
) -> None:
    """Every image a run stores sends its lease check to a worker: it is made once per run,
    and it reads the lock afresh each time it is asked, so a lease taken over is still seen."""
    job, lease = await journal.create_job(make_spec(count=1), lock=True)
    assert lease is not None
    run = journal.run(job.id, lease)
    check = run.lease_check()
    assert run.lease_check() is check and check.held()
    await journal.clear_lock(job.key)
    assert run.lease_check() is check and not check.held()

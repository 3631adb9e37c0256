"""Following a job's events: the in-process bus and the journal's log together, every sequence
number once and in order, whether events come from this process, from another one, or were
dropped by a bus subscriber that fell behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path

from orchestrator.bus import EventBus
from orchestrator.events import Event
from orchestrator.follow import follow
from orchestrator.journal import DiskJournal, Journal
from orchestrator.spec import JobSpec, parse_spec


def spec(key: str, count: int = 3) -> JobSpec:
    items = [{"id": f"i{n}", "prompt": f"picture {n}"} for n in range(count)]
    return parse_spec({"key": key, "items": items}, "test")


async def take(events: AsyncGenerator[Event, None], count: int) -> list[Event]:
    seen: list[Event] = []
    async with asyncio.timeout(30):
        async for event in events:
            seen.append(event)
            if len(seen) == count:
                break
    return seen


async def test_events_of_this_process_and_another_come_once_each_in_order(tmp_path: Path) -> None:
    bus = EventBus()
    journal = Journal(tmp_path / "journal", bus=bus)
    other = DiskJournal(tmp_path / "journal")  # another process: its commits never reach `bus`
    try:
        job, _ = await journal.create_job(spec("k"))
        follower = follow(journal, bus, job.id, after=0, poll_s=0.05)
        async with aclosing(follower):
            first = await take(follower, 1)  # JobCreated, from the log
            # interleave: here (bus) and there (log only), several times
            await journal.cancel_items(job.id, ["i0"])
            await asyncio.to_thread(other.request_retry, job.id, ["i0"])
            await journal.cancel_items(job.id, ["i1"])
            await asyncio.to_thread(other.cancel_items, job.id, ["i2"])
            await journal.request_retry(job.id, ["i1", "i2"])
            expected = [event.seq for event in other.events(job_id=job.id)]
            rest = await take(follower, len(expected) - 1)
        seqs = [event.seq for event in first + rest]
        assert seqs == expected, "each event once, in order, whichever process committed it"
    finally:
        other.close()
        journal.close()


async def test_a_reader_that_fell_behind_the_bus_catches_up_from_the_log(tmp_path: Path) -> None:
    bus = EventBus()
    journal = Journal(tmp_path / "journal", bus=bus)
    try:
        job, _ = await journal.create_job(spec("k", count=60))
        follower = follow(journal, bus, job.id, after=0, poll_s=60.0)  # no polling: the bus only
        async with aclosing(follower):
            await take(follower, 1)
            # a burst the reader does not read while it happens: its bus buffer overflows
            subscription = bus._subscriptions[0]
            subscription._maxsize = 5
            for n in range(60):
                await journal.cancel_items(job.id, [f"i{n}"])
            await journal.request_retry(job.id)  # one more event, heard on the bus
            expected = [event.seq for event in journal.disk.events(job_id=job.id)][1:]
            seen = await take(follower, len(expected))
        assert subscription.dropped > 0, "the test must make the bus drop events"
        assert [event.seq for event in seen] == expected
    finally:
        journal.close()

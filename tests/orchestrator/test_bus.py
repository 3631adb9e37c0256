"""The event bus: fan-out in order, bounded buffers that drop the oldest, clean unsubscribing."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.bus import EventBus, Subscription, SubscriptionClosedError
from orchestrator.events import Event, ItemCompleted


def _event(seq: int) -> Event:
    return ItemCompleted(
        seq=seq, ts=1000.0 + seq, job_id="j1", item_id="a", status="completed", image_path="x"
    )


def _drain(sub: Subscription) -> list[int]:
    seqs: list[int] = []
    while (event := sub.get_nowait()) is not None:
        seqs.append(event.seq)
    return seqs


def test_publish_with_no_subscribers_is_fine() -> None:
    bus = EventBus()
    bus.publish(_event(1))
    assert bus.subscriber_count == 0


async def test_every_subscriber_gets_every_event_in_order() -> None:
    bus = EventBus()
    first, second = bus.subscribe(), bus.subscribe()

    async def read(sub: Subscription, n: int) -> list[int]:
        return [(await sub.get()).seq for _ in range(n)]

    readers = asyncio.gather(read(first, 50), read(second, 50))
    await asyncio.sleep(0)  # both readers are now waiting
    for seq in range(50):
        bus.publish(_event(seq))
        if seq % 7 == 0:
            await asyncio.sleep(0)
    assert list(await readers) == [list(range(50)), list(range(50))]


async def test_a_subscriber_sees_only_events_after_it_subscribed() -> None:
    bus = EventBus()
    bus.publish(_event(1))
    sub = bus.subscribe()
    bus.publish(_event(2))
    assert _drain(sub) == [2]


def test_a_full_buffer_drops_the_oldest_and_counts() -> None:
    bus = EventBus()
    slow = bus.subscribe(maxsize=3)
    fast = bus.subscribe()
    for seq in range(10):
        bus.publish(_event(seq))
    assert _drain(slow) == [7, 8, 9]
    assert slow.dropped == 7
    assert _drain(fast) == list(range(10))
    assert fast.dropped == 0


async def test_iteration_stops_when_closed() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    seen: list[int] = []

    async def consume() -> None:
        async for event in sub:
            seen.append(event.seq)

    consumer = asyncio.create_task(consume())
    bus.publish(_event(1))
    bus.publish(_event(2))
    await asyncio.sleep(0)
    sub.close()
    bus.publish(_event(3))
    async with asyncio.timeout(1.0):
        await consumer
    assert seen == [1, 2]


async def test_a_closed_subscription_receives_nothing_more() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    bus.publish(_event(1))
    sub.close()
    sub.close()  # idempotent
    bus.publish(_event(2))
    assert sub.closed
    assert bus.subscriber_count == 0
    assert sub.get_nowait() is None
    with pytest.raises(SubscriptionClosedError):
        await sub.get()
    assert [event async for event in sub] == []


async def test_close_wakes_a_waiting_get() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    assert not waiter.done()
    sub.close()
    with pytest.raises(SubscriptionClosedError):
        async with asyncio.timeout(1.0):
            await waiter


def test_with_block_unsubscribes() -> None:
    bus = EventBus()
    with bus.subscribe() as sub:
        bus.publish(_event(1))
        assert bus.subscriber_count == 1
        assert _drain(sub) == [1]
    assert sub.closed
    assert bus.subscriber_count == 0


async def test_a_cancelled_reader_leaves_the_subscription_usable() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    reader = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    bus.publish(_event(5))
    async with asyncio.timeout(1.0):
        assert (await sub.get()).seq == 5


def test_a_failing_subscriber_does_not_stop_publish(monkeypatch: pytest.MonkeyPatch) -> None:
    bus = EventBus()
    broken, healthy = bus.subscribe(), bus.subscribe()

    def explode(event: Event) -> None:
        raise RuntimeError("sink is broken")

    monkeypatch.setattr(broken, "_push", explode)
    bus.publish(_event(1))
    bus.publish(_event(2))
    assert _drain(healthy) == [1, 2]
    assert broken.closed
    assert bus.subscriber_count == 1


def test_maxsize_must_be_positive() -> None:
    with pytest.raises(ValueError):
        EventBus().subscribe(maxsize=0)

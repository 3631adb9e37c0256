"""The terminal progress sink counts a job's items from its events."""

from __future__ import annotations

import asyncio
import io

from orchestrator.events import EventBus
from orchestrator.progress import ProgressBar, follow
from orchestrator.records import Event, EventType


def event(seq: int, type_: EventType, item: str, job: str = "j", **data: object) -> Event:
    return Event(seq=seq, ts=0.0, type=type_, job_id=job, item_id=item, data=data)


def test_counts_and_log_lines_off_a_terminal() -> None:
    out = io.StringIO()
    bar = ProgressBar("j", total=3, done=0, stream=out, live=False)
    for e in (
        event(1, EventType.ITEM_STARTED, "a"),
        event(2, EventType.ITEM_RETRYING, "a", kind="rate_limited", message="429", delay_s=2.0),
        event(3, EventType.ITEM_STARTED, "a"),
        event(4, EventType.ITEM_COMPLETED, "a"),
        event(5, EventType.ITEM_STARTED, "b"),
        event(6, EventType.ITEM_FAILED, "b", kind="content_rejected", message="no"),
        event(7, EventType.ITEM_COMPLETED, "x", job="other"),  # another job's event is ignored
    ):
        bar.handle(e)
    assert (bar.done, bar.failed, bar.running, bar.retries) == (1, 1, 0, 1)
    lines = out.getvalue().splitlines()
    assert lines == [
        "a: retrying in 2.0s after rate_limited: 429",
        "a: completed (1/3)",
        "b: failed: content_rejected: no",
    ]
    assert "2/3" in bar.line() and "1 failed" in bar.line()


async def test_live_bar_redraws_while_nothing_happens() -> None:
    out = io.StringIO()
    bar = ProgressBar("j", total=2, done=1, stream=out, live=True)
    bus = EventBus()
    with bus.subscribe() as subscription:
        task = asyncio.create_task(follow(subscription, bar, tick_s=0.01))
        await asyncio.sleep(0.1)
        bus.publish(event(1, EventType.ITEM_COMPLETED, "b"))
        await asyncio.sleep(0.05)
        task.cancel()
    draws = out.getvalue().count("\r")
    assert draws >= 3  # ticks, not only the one event
    assert "2/2" in out.getvalue().split("\r")[-1]

"""When the provider looks down (connections refused, 5xx in a row), the lane's breaker calls it
only now and then, and nothing moves: the front ends say why instead of a bare "first image
pending"."""

from __future__ import annotations

import io

from orchestrator import JobRecord
from orchestrator.cli.display import JobDisplay
from orchestrator.events import ItemGenerated, ItemRetrying, JobInterrupted
from orchestrator.states import ItemStatus
from orchestrator.tally import BREAKER_AFTER, Tally
from orchestrator.wording import pace_line

from .records_builder import T0, job_record
from .records_builder import item_record as _item

DOWN = "openai: connection failed (ConnectError)"


def _job(*, active: bool = True) -> JobRecord:
    return job_record(8, active=active)


def _retrying(seq: int, kind: str = "unavailable", message: str = DOWN) -> ItemRetrying:
    return ItemRetrying(
        seq=seq,
        ts=T0 + seq,
        job_id="j",
        item_id=f"i{seq % 8}",
        status="pending",
        kind=kind,
        message=message,
        delay_s=1.0,
    )


def test_failures_in_a_row_as_the_breaker_counts_them_say_the_provider_looks_down() -> None:
    tally = Tally.from_snapshot(_job(), [_item(n) for n in range(8)], now=T0)
    for seq in range(1, BREAKER_AFTER):
        tally.apply(_retrying(seq))
    assert not tally.provider_down  # one short of the breaker
    tally.apply(_retrying(BREAKER_AFTER))
    assert tally.provider_down and tally.down_reason == DOWN
    now = T0 + 10
    line = JobDisplay(tally, io.StringIO(), live=False, now=lambda: now).wait_line(now)
    assert line == f"the provider looks down ({DOWN}): trying it now and then"
    assert pace_line(tally, now).endswith(" · the provider looks down: trying it now and then")
    image = ItemGenerated(
        seq=20, ts=now, job_id="j", item_id="i1", status="running", bytes=1, width=1, height=1
    )
    tally.apply(image)  # it answered
    assert not tally.provider_down and "looks down" not in pace_line(tally, now)
    for seq in range(30, 30 + BREAKER_AFTER):
        tally.apply(_retrying(seq))
    assert tally.provider_down
    tally.apply(JobInterrupted(seq=40, ts=now, job_id="j", status="running", counts={}, run_s=9.0))
    assert not tally.provider_down  # the run is over: nothing is trying it


def test_a_rate_limit_is_an_answer_and_a_timeout_says_nothing() -> None:
    tally = Tally.from_snapshot(_job(), [_item(n) for n in range(8)], now=T0)
    for seq in range(1, BREAKER_AFTER + 1):
        tally.apply(_retrying(seq))
    tally.apply(_retrying(10, "timeout", "no answer in 120s"))
    assert tally.provider_down
    tally.apply(_retrying(11, "rate_limited", "429"))
    assert not tally.provider_down


def test_a_job_opened_during_an_outage_says_so_at_once() -> None:
    """The TUI or `watch` opening a job whose last attempts failed: counted from the records,
    back from the latest attempt to the provider's last answer."""

    def attempt(n: int, outcome: str, kind: str | None = None) -> dict[str, object]:
        error = {"kind": kind, "message": DOWN} if kind else None
        return {
            "number": 1,
            "started_at": T0 + n,
            "ended_at": T0 + n + 0.5,
            "outcome": outcome,
            "error": error,
        }

    answered = _item(0, status=ItemStatus.COMPLETED, attempts=[attempt(0, "ok")])
    failed = [
        _item(n, status=ItemStatus.PENDING, attempts=[attempt(n, "error", "unavailable")])
        for n in range(1, BREAKER_AFTER + 1)
    ]
    tally = Tally.from_snapshot(_job(), [answered, *failed], now=T0 + 60)
    assert tally.provider_down and tally.down_reason == DOWN
    earlier = Tally.from_snapshot(_job(), [*failed[:-1], answered], now=T0 + 60)
    assert not earlier.provider_down  # one short: the image came before four of them
    idle = Tally.from_snapshot(_job(active=False), [answered, *failed], now=T0 + 60)
    assert not idle.provider_down  # no run is trying it now

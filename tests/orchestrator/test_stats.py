"""`orchestrator.stats`: every number of a hand-counted job, the percentiles, adding jobs
together, stuck jobs; and the same counts from a job the real runner ran."""

from __future__ import annotations

import pytest

from orchestrator.errors import ContentRejectedError, RateLimitedError, UnavailableError
from orchestrator.locks import LockOwner
from orchestrator.records import AttemptRecord, ErrorInfo, ItemRecord, JobRecord
from orchestrator.spec import JobConfig
from orchestrator.states import ItemStatus, JobStatus
from orchestrator.stats import job_stats, percentile, stuck, total
from orchestrator.testing.scripted import ScriptedProvider, make_spec

from .conftest import MakeOrchestrator

T0 = 1_700_000_000.0


def _attempt(
    number: int, took: float, outcome: str, kind: str = "", cost: float | None = None
) -> AttemptRecord:
    return AttemptRecord(
        number=number,
        started_at=T0 + 100 * number,
        ended_at=T0 + 100 * number + took,
        outcome=outcome,
        error=ErrorInfo(kind=kind, message=kind) if kind else None,
        cost_usd=cost,
        retry=number > 1 and outcome != "cancelled",
    )


def _item(
    item_id: str, status: ItemStatus, *attempts: AttemptRecord, error: str = "", model: str = ""
) -> ItemRecord:
    return ItemRecord(
        job_id="job-1",
        id=item_id,
        index=0,
        prompt="p",
        status=status,
        attempts=attempts,
        error=ErrorInfo(kind=error, message=error) if error else None,
        created_at=T0,
        updated_at=T0,
        model=model or None,
    )


def _job(*, active: bool = False, run_s: float = 90.0, model: str | None = None) -> JobRecord:
    config = JobConfig(key="story-1", provider="openai", model=model)
    return JobRecord(
        id="job-1",
        config=config,
        status=JobStatus.RUNNING if active else JobStatus.PARTIAL,
        active=active,
        total=6,
        created_at=T0,
        updated_at=T0,
        run_s=run_s,
    )


HAND_COUNTED = [
    # a: a 429 after 2.0 s, then an image after 1.0 s for $0.04
    _item(
        "a",
        ItemStatus.COMPLETED,
        _attempt(1, 2.0, "error", "rate_limited"),
        _attempt(2, 1.0, "ok", cost=0.04),
        model="gpt-image-1",
    ),
    # b: an image after 3.0 s whose price is unknown
    _item("b", ItemStatus.COMPLETED, _attempt(1, 3.0, "ok"), model="gpt-image-1"),
    # c: a timeout after 10 s, then rejected after 0.5 s
    _item(
        "c",
        ItemStatus.FAILED,
        _attempt(1, 10.0, "error", "timeout"),
        _attempt(2, 0.5, "error", "content_rejected"),
        error="content_rejected",
    ),
    # d: completed without a paid attempt of its own (a cache hit)
    _item("d", ItemStatus.COMPLETED),
    # e: cancelled during its first attempt (its time is no answer time)
    _item("e", ItemStatus.CANCELLED, _attempt(1, 7.0, "cancelled")),
    # f: not started
    _item("f", ItemStatus.PENDING),
]


def test_every_number_of_a_hand_counted_job() -> None:
    stats = job_stats(_job(), HAND_COUNTED, now=T0 + 1000).stats
    assert stats.items == 6
    assert stats.count(ItemStatus.COMPLETED) == 3
    assert stats.count(ItemStatus.FAILED) == 1
    assert stats.count(ItemStatus.CANCELLED) == 1
    assert stats.count(ItemStatus.PENDING) == 1
    assert stats.success_rate == pytest.approx(3 / 4)  # a, b, d of a, b, c, d (e was cancelled)
    assert stats.attempts == 6
    assert stats.retries == 2  # a's second and c's second
    assert stats.failures == {"content_rejected": 1}
    assert stats.attempt_errors == {"content_rejected": 1, "rate_limited": 1, "timeout": 1}
    # answers took 2.0, 1.0, 3.0, 10.0 and 0.5 s: sorted 0.5 1 2 3 10
    [latency] = stats.latency
    assert (latency.provider, latency.model) == ("openai", "gpt-image-1")  # the recorded model
    assert latency.count == 5
    assert latency.p50_s == pytest.approx(2.0)  # rank ceil(2.5) = 3
    assert latency.p95_s == pytest.approx(10.0)  # rank ceil(4.75) = 5
    assert latency.max_s == pytest.approx(10.0)
    assert stats.run_s == 90.0
    assert stats.images_per_minute == pytest.approx(2.0)  # 3 images in 1.5 minutes
    assert stats.cost_usd == pytest.approx(0.04)
    assert stats.unpriced == 1
    assert stats.cached == 1
    document = stats.as_json()
    assert document["success_rate"] == pytest.approx(0.75)
    assert document["latency"][0]["p95_s"] == pytest.approx(10.0)
    assert document["counts"]["completed"] == 3


def test_percentiles_by_nearest_rank() -> None:
    values = [float(n) for n in range(20, 0, -1)]  # 1..20, out of order
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0  # not the maximum
    assert percentile(values, 100) == 20.0
    assert percentile([4.0], 95) == 4.0
    assert percentile([], 50) is None


def test_the_jobs_model_names_the_latency_group_and_jobs_add_up() -> None:
    one = job_stats(_job(model="dall-e-3"), HAND_COUNTED, now=T0).stats
    assert [(row.provider, row.model) for row in one.latency] == [("openai", "dall-e-3")]
    other = job_stats(_job(run_s=30.0), HAND_COUNTED[:2], now=T0).stats  # answers 2, 1, 3
    both = total([one, other])
    assert both.jobs == 2 and both.items == 8 and both.attempts == 9 and both.retries == 3
    assert both.count(ItemStatus.COMPLETED) == 5
    assert both.attempt_errors == {"rate_limited": 2, "content_rejected": 1, "timeout": 1}
    assert both.images_per_minute == pytest.approx(60 * 5 / 120)
    assert both.cost_usd == pytest.approx(0.08) and both.unpriced == 2 and both.cached == 1
    assert [(row.model, row.count, row.p50_s) for row in both.latency] == [
        ("dall-e-3", 5, 2.0),
        ("gpt-image-1", 3, 2.0),
    ]


def test_a_result_cache_hit_counts_as_cached() -> None:
    hit = _item("g", ItemStatus.COMPLETED).model_copy(update={"cached_from": "job-0/a"})
    paid = _item("h", ItemStatus.COMPLETED, _attempt(1, 1.0, "ok", cost=0.04))
    stats = job_stats(_job(), [hit, paid], now=T0).stats
    assert stats.cached == 1 and stats.cost_usd == pytest.approx(0.04)


def test_nothing_ran_yet() -> None:
    stats = job_stats(_job(run_s=0.0), [_item("f", ItemStatus.PENDING)], now=T0).stats
    assert stats.success_rate is None and stats.images_per_minute is None
    assert stats.latency == [] and stats.attempts == 0


def _owner(job_id: str = "job-1", beat: float = T0) -> LockOwner:
    return LockOwner(
        key="story-1",
        job_id=job_id,
        pid=4242,
        host="box",
        started_at=T0,
        heartbeat_at=beat,
        token="t",
    )


def test_a_running_job_without_a_live_runner_is_stuck() -> None:
    running = _job(active=True)
    marked = stuck(running, _owner(beat=T0), live=False, now=T0 + 400)
    assert marked is not None
    assert (marked.job_id, marked.heartbeat_age_s, marked.pid) == ("job-1", 400.0, 4242)
    nobody = stuck(running, None, live=False, now=T0)
    assert nobody is not None and nobody.heartbeat_age_s is None
    other = stuck(running, _owner("job-2"), live=False, now=T0)
    assert other is not None and other.pid is None
    assert stuck(running, _owner(beat=T0), live=True, now=T0 + 10) is None
    assert stuck(_job(active=False), None, live=False, now=T0 + 400) is None  # ended or stopped


async def test_counts_of_a_job_the_runner_ran(make_orchestrator: MakeOrchestrator) -> None:
    provider = ScriptedProvider(
        {
            "i0": [RateLimitedError("busy", retry_after=0.01), UnavailableError("500")],
            "i1": [ContentRejectedError("moderation_blocked")],
        }
    )
    orch = make_orchestrator(provider, retry_base_s=0.01)
    job = await orch.submit(make_spec(3, concurrency=1, max_attempts=3))
    await job.wait()
    snapshot = await job.snapshot()
    stats = job_stats(snapshot.job, snapshot.items, now=T0).stats
    assert len(provider.calls) == 5
    assert stats.attempts == 5  # i0: 3, i1: 1, i2: 1
    assert stats.retries == 2
    assert stats.failures == {"content_rejected": 1}
    assert stats.attempt_errors == {"content_rejected": 1, "rate_limited": 1, "unavailable": 1}
    assert stats.success_rate == pytest.approx(2 / 3)
    assert stats.cost_usd == pytest.approx(0.02) and stats.cached == 0
    [latency] = stats.latency
    assert (latency.provider, latency.model, latency.count) == ("scripted", "s", 5)
    took = sorted(
        (attempt.ended_at or 0.0) - attempt.started_at
        for item in snapshot.items
        for attempt in item.attempts
    )
    assert latency.p50_s == took[2] and latency.max_s == took[-1]

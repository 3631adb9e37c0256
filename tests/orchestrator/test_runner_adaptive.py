"""Jobs with `concurrency: "auto"`: the runner learns how many attempts the provider takes from its
429s, records the limit as it changes, and never shrinks it because images are slow. On looptime's
virtual clock; what is asserted is counted (calls, 429s, limits), never a duration."""

from __future__ import annotations

import pytest

from orchestrator.events import JobConcurrency
from orchestrator.handle import JobHandle
from orchestrator.service import Orchestrator
from orchestrator.states import JobStatus
from orchestrator.tally import Tally
from orchestrator.testing.scripted import ScriptedProvider, make_spec
from orchestrator.wording import counts_line

from .conftest import MakeOrchestrator

pytestmark = pytest.mark.looptime


async def recorded_limits(orch: Orchestrator, job: JobHandle) -> list[int]:
    """The concurrency limits the job's runner recorded, in order."""
    events = await orch.journal.read(orch.journal.disk.events, job_id=job.id)
    return [event.limit for event in events if isinstance(event, JobConcurrency)]


def rate_limited_calls(provider: ScriptedProvider, images: int) -> int:
    return len(provider.calls) - images


async def test_the_limit_settles_at_a_hidden_cap_with_few_429s(
    make_orchestrator: MakeOrchestrator,
) -> None:
    images, cap = 64, 8
    provider = ScriptedProvider(latency_s=60.0, max_concurrent=cap, cap_retry_after_s=1.0)
    orch = make_orchestrator(provider)
    spec = make_spec(images, concurrency="auto", max_concurrency=32, max_attempts=10)
    job = await orch.submit(spec)
    assert (await job.wait()).status == JobStatus.COMPLETED
    limits = await recorded_limits(orch, job)
    assert limits[0] == 4  # slow start from 4
    assert provider.peak == cap  # it found the whole cap ...
    assert max(limits) <= cap + 2  # ... without racing far past it (a maximum of 32)
    assert len(provider.calls) / images <= 1.10  # few calls refused: calls per image
    assert 1 <= rate_limited_calls(provider, images) <= 6
    record = await job.status()
    assert record.concurrency == limits[-1] and cap // 2 <= record.concurrency <= cap + 1


async def test_slow_images_and_timeouts_never_shrink_the_limit(
    make_orchestrator: MakeOrchestrator,
) -> None:
    # a minute and a half per image, and every fourth item hangs past its timeout once
    hangs = {f"i{n}": ["hang"] for n in range(0, 24, 4)}
    provider = ScriptedProvider(hangs, latency_s=90.0)
    orch = make_orchestrator(provider)
    spec = make_spec(24, concurrency="auto", max_concurrency=8, timeout_s=100, max_attempts=3)
    job = await orch.submit(spec)
    assert (await job.wait()).status == JobStatus.COMPLETED
    limits = await recorded_limits(orch, job)
    assert limits == sorted(limits), limits  # it only ever grew
    assert limits[-1] == 8 and provider.peak == 8  # up to the maximum, and no further


async def test_the_maximum_holds_with_a_provider_that_never_refuses(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider(latency_s=30.0)
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(60, concurrency="auto", max_concurrency=6))
    assert (await job.wait()).status == JobStatus.COMPLETED
    assert provider.peak == 6 and len(provider.calls) == 60
    assert max(await recorded_limits(orch, job)) == 6


async def test_a_fixed_concurrency_records_no_limit_and_shows_none(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider(latency_s=1.0)
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(6, concurrency=3))
    assert (await job.wait()).status == JobStatus.COMPLETED
    assert await recorded_limits(orch, job) == []
    snapshot = await job.snapshot()
    tally = Tally.from_snapshot(snapshot.job, snapshot.items, now=0.0)
    assert tally.concurrency is None and "concurrency" not in counts_line(tally, 0.0)


async def test_a_follower_tally_shows_the_limit_from_the_event_log(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider(latency_s=10.0, max_concurrent=3, cap_retry_after_s=None)
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(12, concurrency="auto", max_concurrency=16))
    assert (await job.wait()).status == JobStatus.COMPLETED
    # a follower starts from the job as created and replays every event
    events = await orch.journal.read(orch.journal.disk.events, job_id=job.id)
    created = (await job.snapshot()).job.model_copy(update={"concurrency": None})
    tally = Tally.from_snapshot(created, await job.items(), now=0.0)
    assert tally.concurrency is None
    assert "concurrency auto (at most 16)" in counts_line(tally, 0.0)
    for event in events:
        tally.apply(event)
    last = (await recorded_limits(orch, job))[-1]
    assert tally.concurrency == last and tally.max_concurrency == 16
    assert f"concurrency {last} (auto, at most 16)" in counts_line(tally, 0.0)

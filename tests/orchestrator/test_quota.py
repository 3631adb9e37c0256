"""The start rate that processes on one workspace share: the schedule itself (pure arithmetic on
a given clock), separate processes reserving from one file, and two orchestrators whose jobs
together keep to one rate. Real time where processes are involved; the checks count starts, the
spans they allow are several times any scheduling delay."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import time
from pathlib import Path

import pytest

from orchestrator.pipeline import PipelineSettings
from orchestrator.providers.base import GeneratedImage, GenerateRequest
from orchestrator.quota import QUOTA_FILE, SharedQuota
from orchestrator.service import Orchestrator
from orchestrator.spec import parse_spec
from orchestrator.stages import PostStage
from orchestrator.states import JobStatus
from orchestrator.storage import Workspace
from orchestrator.testing.scripted import ScriptedProvider, make_spec


def test_starts_are_spaced_by_the_rate_across_instances(tmp_path: Path) -> None:
    one, two = SharedQuota(tmp_path / QUOTA_FILE), SharedQuota(tmp_path / QUOTA_FILE)
    try:
        now = 1000.0
        waits = [quota.reserve("openai|k", 1.0, now=now) for quota in (one, two, one, two)]
        assert waits == [0.0, 1.0, 2.0, 3.0]  # one schedule, whoever asks
        assert one.reserve("gemini|k", 1.0, now=now) == 0.0  # another provider: its own
        # after a quiet spell the next start goes at once, not at the old schedule
        assert two.reserve("openai|k", 1.0, now=now + 60) == 0.0
    finally:
        one.close()
        two.close()


def test_a_burst_lets_that_many_go_at_once_then_spaces_the_rest(tmp_path: Path) -> None:
    quota = SharedQuota(tmp_path / QUOTA_FILE)
    try:
        waits = [quota.reserve("k", 2.0, burst=3, now=500.0) for _ in range(5)]
        assert waits == [0.0, 0.0, 0.0, 2.0, 4.0]
    finally:
        quota.close()


def test_a_wall_clock_that_went_back_does_not_hold_starts_for_hours(tmp_path: Path) -> None:
    quota = SharedQuota(tmp_path / QUOTA_FILE)
    try:
        assert quota.reserve("k", 1.0, now=100_000.0) == 0.0
        assert quota.reserve("k", 1.0, now=1_000.0) == 0.0  # the clock was set back a day
        assert quota.reserve("k", 1.0, now=1_000.0) == 1.0
    finally:
        quota.close()


def _reserve_many(
    path: str, count: int, interval: float, out: multiprocessing.Queue[list[float]]
) -> None:
    quota = SharedQuota(Path(path))
    waits = [quota.reserve("shared", interval) for _ in range(count)]
    reserved = [time.time() + wait for wait in waits]  # when each start may go
    quota.close()
    out.put(reserved)


def test_separate_processes_get_starts_from_one_schedule(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[list[float]] = context.Queue()
    interval, per_process = 0.5, 6
    workers = [
        context.Process(
            target=_reserve_many, args=(str(tmp_path / QUOTA_FILE), per_process, interval, out)
        )
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    starts = sorted(t for _ in workers for t in out.get(timeout=60))
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # reserved moments: one every `interval`, whichever process reserved it (a small slack for
    # the time between reading the clock in the reservation and again in the test)
    assert len(starts) == 4 * per_process
    assert min(gaps) > interval - 0.1, gaps
    assert starts[-1] - starts[0] >= (len(starts) - 1) * interval - 0.2


def _spec(key: str) -> dict[str, object]:
    return {
        "key": key,
        "provider": "mock",
        "provider_options": {"latency_mean_s": 0, "latency_distribution": "fixed"},
        "defaults": {"size": "64x64"},
        "limits": {"rate_per_minute": 120, "concurrency": 4},
        "output": {"format": "png", "thumbnail_px": 32},
        "items": [{"id": f"{key}-{n}", "prompt": f"{key} {n}"} for n in range(6)],
    }


@pytest.mark.parametrize("shared", [True, False])
async def test_two_orchestrators_on_one_workspace_keep_one_rate_together(
    tmp_path: Path, shared: bool
) -> None:
    workspace = Workspace(tmp_path / "ws")
    settings = PipelineSettings(seed=1, shared_quota=shared)
    first = Orchestrator(workspace, settings=settings)  # as two processes would: two lanes
    second = Orchestrator(workspace, settings=settings)
    try:
        one = await first.submit(parse_spec(_spec("a"), "t"))
        two = await second.submit(parse_spec(_spec("b"), "t"))
        assert (await one.wait()).status == (await two.wait()).status == JobStatus.COMPLETED
        items = [*(await one.items()), *(await two.items())]
        starts = sorted(item.attempts[0].started_at for item in items)
    finally:
        await first.aclose()
        await second.aclose()
    span = starts[-1] - starts[0]
    if shared:  # 12 starts at 120/min between them: 11 half-second steps
        assert span >= 11 * 0.5 - 0.3, starts
    else:  # each keeps 120/min on its own: they overlap, the pair goes twice as fast
        assert span < 11 * 0.5 - 1.0, starts


class _SlowToLoad(ScriptedProvider):
    """A provider whose SDK takes 1.5 s to load from its first use: every call waits for it,
    as the real ones wait for their SDK's import; `ready()` says when it is loaded."""

    loading: asyncio.Task[None] | None = None

    async def ready(self) -> None:
        if self.loading is None:
            self.loading = asyncio.ensure_future(asyncio.sleep(1.5))
        await self.loading

    async def generate(self, request: GenerateRequest) -> GeneratedImage:
        await self.ready()
        return await super().generate(request)


async def test_starts_are_taken_once_the_provider_can_send(tmp_path: Path) -> None:
    """Starts reserved while the SDK loads would all go out together when it is loaded: a
    burst the provider answers with 429s. They are reserved once it is ready."""
    provider = _SlowToLoad()
    orchestrator = Orchestrator(
        Workspace(tmp_path / "ws"),
        settings=PipelineSettings(seed=1, shared_quota=True),
        providers={"scripted": provider},
        post=PostStage(2, processes=False),
    )
    try:
        job = await orchestrator.submit(make_spec(5, concurrency=5, rate_per_minute=120))
        assert (await job.wait()).status == JobStatus.COMPLETED
    finally:
        await orchestrator.aclose()
    calls = sorted(call.at for call in provider.calls)
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
    assert min(gaps) >= 0.25, gaps  # 120/min: half a second apart, none bunched together

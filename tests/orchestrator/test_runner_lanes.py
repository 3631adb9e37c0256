"""Jobs that one process runs against one provider share its lane: one rate for all of them,
and a 429 seen by one cools the others down. On looptime's virtual clock."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from orchestrator.errors import RateLimitedError
from orchestrator.states import JobStatus
from orchestrator.testing.scripted import ScriptedProvider, make_spec

from .conftest import MakeOrchestrator

pytestmark = pytest.mark.looptime


async def test_two_jobs_on_one_provider_share_one_rate(make_orchestrator: MakeOrchestrator) -> None:
    provider = ScriptedProvider()
    orch = make_orchestrator(provider)
    jobs = await asyncio.gather(
        orch.submit(make_spec(4, key="first", rate_per_minute=60)),
        orch.submit(make_spec(4, key="second", rate_per_minute=60)),
    )
    for job in jobs:
        assert (await job.wait()).status == JobStatus.COMPLETED
    assert {call.job_id for call in provider.calls} == {job.id for job in jobs}
    starts = sorted(call.at for call in provider.calls)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # 60/min for both jobs together: one start a second, not two (which would be 0.5 s apart)
    assert len(starts) == 8 and min(gaps) >= 0.999, gaps


async def test_a_429_on_one_job_cools_the_other_down(make_orchestrator: MakeOrchestrator) -> None:
    provider = ScriptedProvider({"i0": [RateLimitedError("slow down", retry_after=20.0)]})
    orch = make_orchestrator(provider)
    limited = await orch.submit(make_spec(1, key="limited"))
    while not provider.calls:
        await asyncio.sleep(0.01)
    first_429 = provider.calls[0].at
    other = await orch.submit(make_spec(2, key="other", prefix="o"))
    assert (await other.wait()).status == JobStatus.COMPLETED  # it never had a 429 itself
    assert (await limited.wait()).status == JobStatus.COMPLETED
    other_starts = [call.at for call in provider.calls if call.job_id == other.id]
    assert len(other_starts) == 2
    assert min(other_starts) - first_429 >= 20.0  # yet it waited out the cool-down

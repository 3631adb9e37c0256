"""`submit(spec, before_start=...)`: a front end speaks once the job is recorded and before any
of it runs; if it fails, the job stays pending and its key's lock is free."""

from __future__ import annotations

import pytest

from orchestrator import JobHandle
from orchestrator.states import JobStatus
from orchestrator.testing.scripted import ScriptedProvider, make_spec

from .conftest import MakeOrchestrator


async def test_the_hook_runs_before_anything_of_the_job(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider()
    orch = make_orchestrator(provider)
    seen = []

    async def before_start(handle: JobHandle) -> None:
        seen.append((await handle.status()).status)
        assert await orch.journal.holder("k") is not None  # the key is held already

    job = await orch.submit(make_spec(2, key="k"), before_start=before_start)
    assert (await job.wait()).status == JobStatus.COMPLETED
    assert seen == [JobStatus.PENDING] and len(provider.calls) == 2


async def test_a_failing_hook_leaves_the_job_pending_and_its_key_free(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider()
    orch = make_orchestrator(provider)
    recorded = []

    async def before_start(handle: JobHandle) -> None:
        recorded.append(handle.id)
        raise RuntimeError("the front end broke")

    with pytest.raises(RuntimeError):
        await orch.submit(make_spec(2, key="k"), before_start=before_start)
    assert provider.calls == [] and await orch.journal.holder("k") is None
    (job_id,) = recorded
    assert (await orch.handle(job_id).status()).status == JobStatus.PENDING
    assert (await (await orch.start(job_id)).wait()).status == JobStatus.COMPLETED

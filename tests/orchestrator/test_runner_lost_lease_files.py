"""A runner whose lock is lost while a call is under way writes no file when the answer comes:
the new owner's images stay as it wrote them (found by the stale-lease trial, `trials/leases.py`:
a runner woken after SIGCONT replaced a raw image the new owner had recorded)."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.errors import LeaseLostError
from orchestrator.stages import PostStage
from orchestrator.states import ItemStatus
from orchestrator.testing.scripted import ScriptedProvider, make_spec

from .conftest import MakeOrchestrator

pytestmark = pytest.mark.looptime


async def _under_way(provider: ScriptedProvider, count: int) -> None:
    while len(provider.calls) < count:
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "worker processes"])
async def test_an_answer_after_the_lock_was_lost_writes_no_image(
    make_orchestrator: MakeOrchestrator, processes: bool
) -> None:
    """Images are stored in worker processes (each checks the lock on its own connection to
    the journal) or, where none can start, in threads."""
    provider = ScriptedProvider({"i0": ["held"]})
    orch = make_orchestrator(provider, post=PostStage(1, processes=processes))
    job = await orch.submit(make_spec(1))
    await _under_way(provider, 1)
    await orch.clear_lock("test-key")  # another process took the job over meanwhile
    provider.gate.set()
    with pytest.raises(LeaseLostError, match="was cleared"):
        await job.wait()
    raw = orch.workspace.job_dir(job.id) / "raw"
    assert not raw.exists() or not any(raw.iterdir()), "the old runner wrote an image"
    item = (await job.items())[0]
    assert item.status == ItemStatus.RUNNING and item.raw_path is None

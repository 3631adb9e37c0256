"""Winding a run down (the CLI's first Ctrl-C): no request starts any more, the ones under way
finish and their images are kept, then the run ends interrupted and the job stays resumable."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.errors import UnavailableError
from orchestrator.states import ItemStatus, JobStatus
from orchestrator.testing.scripted import ScriptedProvider, make_spec

from .conftest import MakeOrchestrator

pytestmark = pytest.mark.looptime


async def _under_way(provider: ScriptedProvider, count: int) -> None:
    while len(provider.calls) < count:
        await asyncio.sleep(0.01)


async def test_the_calls_under_way_finish_and_nothing_else_starts(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider({"i0": ["held"], "i1": ["held"]})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(6, concurrency=2))
    await _under_way(provider, 2)
    assert orch.wind_down() == 2
    await asyncio.sleep(5)
    assert len(provider.calls) == 2, "a request started after the wind-down"
    provider.gate.set()
    ended = await job.wait()

    assert ended.status == JobStatus.PENDING and not ended.active  # interrupted, resumable
    items = {item.id: item for item in await job.items()}
    for item_id in ("i0", "i1"):  # paid for: kept, not interrupted
        assert items[item_id].status == ItemStatus.COMPLETED
        assert [attempt.outcome for attempt in items[item_id].attempts] == ["ok"]
    for item_id in ("i2", "i3", "i4", "i5"):
        assert items[item_id].status == ItemStatus.PENDING and not items[item_id].attempts
    assert orch.wind_down() is None  # nothing runs here any more

    resumed = await (await orch.start(job.id)).wait()
    assert resumed.status == JobStatus.COMPLETED
    assert len(provider.calls) == 6


async def test_a_failed_call_is_not_retried_while_the_run_winds_down(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider({"i0": [UnavailableError("down")]}, latency_s=2.0)
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(1, max_attempts=3))
    await _under_way(provider, 1)
    assert orch.wind_down() == 1
    ended = await job.wait()
    assert ended.status == JobStatus.PENDING
    [item] = await job.items()
    assert item.status == ItemStatus.PENDING and len(provider.calls) == 1
    assert [attempt.outcome for attempt in item.attempts] == ["error"]  # not "interrupted"


async def test_a_stop_asked_from_elsewhere_winds_the_run_down(
    make_orchestrator: MakeOrchestrator,
) -> None:
    """`JobHandle.stop()` from another orchestrator on the workspace, as another process asks:
    the runner reads the request from the journal's event log."""
    provider = ScriptedProvider({"i0": ["held"], "i1": ["held"]})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(6, concurrency=2))
    await _under_way(provider, 2)
    elsewhere = make_orchestrator(ScriptedProvider()).handle(job.id)
    assert await elsewhere.stop()
    await asyncio.sleep(5)
    assert len(provider.calls) == 2, "a request started after the stop"
    provider.gate.set()
    ended = await job.wait()
    assert ended.status == JobStatus.PENDING and not ended.active
    items = {item.id: item for item in await job.items()}
    assert [items[i].status for i in ("i0", "i1")] == [ItemStatus.COMPLETED] * 2
    assert all(not items[i].attempts for i in ("i2", "i3", "i4", "i5"))
    assert not await elsewhere.stop()  # nothing runs it now: nothing is asked


async def test_a_wind_down_whose_calls_were_the_last_images_finishes_the_job(
    make_orchestrator: MakeOrchestrator,
) -> None:
    """Nothing is left to resume: the job is completed and its run says finished, not
    "interrupted" (the CLI warned "stopped (interrupted)" above a completed summary)."""
    provider = ScriptedProvider({"i0": ["held"], "i1": ["held"]})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(2, concurrency=2))
    await _under_way(provider, 2)
    assert orch.wind_down() == 2
    provider.gate.set()
    ended = await job.wait()
    assert ended.status == JobStatus.COMPLETED and not ended.active
    events, _ = await orch.journal.events_since(0, job.id)
    kinds = [event.type for event in events]
    assert kinds[-1] == "job.finished" and "job.interrupted" not in kinds


@pytest.mark.parametrize("asked", ["here", "from elsewhere"])
async def test_the_journal_knows_a_run_is_stopping_until_it_ends(
    make_orchestrator: MakeOrchestrator, asked: str
) -> None:
    """So that a kill while it waits for its requests is not counted against their images:
    a wind-down here (the CLI's Ctrl-C or SIGTERM, the TUI's q) or a `stop` from elsewhere."""
    provider = ScriptedProvider({"i0": ["held"]})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(3, concurrency=1))
    await _under_way(provider, 1)
    assert not (await job.status()).stopping
    if asked == "here":
        assert orch.wind_down() == 1
    else:
        assert await make_orchestrator(ScriptedProvider()).handle(job.id).stop()
    while not (await job.status()).stopping:
        await asyncio.sleep(0.01)
    provider.gate.set()
    ended = await job.wait()
    assert not ended.stopping and not ended.active

"""Quitting the app while it runs jobs: a request under way may be billed, so the first `q`
lets those finish (their images kept) and quits then; a second `q` quits at once."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from orchestrator import ItemRecord, JobHandle, Orchestrator, Workspace
from orchestrator.states import ItemStatus
from orchestrator.testing.scripted import ScriptedProvider, make_spec
from tui import ImageBatchApp

from .helpers import SIZE, notifications, tui_app, until


async def _items(workspace: Workspace, job_id: str) -> list[ItemRecord]:
    """The job's items as the journal keeps them, once the app (and its orchestrator) closed."""
    async with Orchestrator(workspace, env={}) as orchestrator:
        return await orchestrator.handle(job_id).items()


async def _q_while_under_way(
    app: ImageBatchApp, pilot: Pilot[Any], provider: ScriptedProvider, *, items: int, under_way: int
) -> JobHandle:
    """Run a job of `items` images, `under_way` at a time; press q once that many are sent."""
    assert app.session is not None
    handle = await app.session.orchestrator.submit(make_spec(items, concurrency=under_way))
    await until(pilot, lambda: len(provider.calls) == under_way, "the requests under way")
    await pilot.press("q")
    return handle


async def test_q_lets_the_requests_under_way_finish_then_quits(workspace: Workspace) -> None:
    provider = ScriptedProvider({"i0": ["held"], "i1": ["held"]})
    app = tui_app(workspace, providers={"scripted": provider})
    async with app.run_test(size=SIZE) as pilot:
        handle = await _q_while_under_way(app, pilot, provider, items=5, under_way=2)
        said = "Quitting: Waiting for the 2 requests under way"
        await until(pilot, lambda: any(said in note for note in notifications(app)), said)
        await pilot.pause(0.5)
        assert not app._exit, "the app quit before the requests under way were kept"
        provider.gate.set()
        await until(pilot, lambda: app._exit, "the app quits once they are kept")
    items = {item.id: item for item in await _items(workspace, handle.id)}
    assert [items[i].status for i in ("i0", "i1")] == [ItemStatus.COMPLETED] * 2
    assert all(items[i].status == ItemStatus.PENDING for i in ("i2", "i3", "i4"))
    assert len(provider.calls) == 2


async def test_a_second_q_quits_at_once(workspace: Workspace) -> None:
    provider = ScriptedProvider({"i0": ["held"]})
    app = tui_app(workspace, providers={"scripted": provider})
    async with app.run_test(size=SIZE) as pilot:
        handle = await _q_while_under_way(app, pilot, provider, items=2, under_way=1)
        await until(pilot, lambda: bool(notifications(app)), "the app says it waits")
        await pilot.press("q")
        await until(pilot, lambda: app._exit, "the second q quits")
    [first, _] = await _items(workspace, handle.id)
    assert [attempt.outcome for attempt in first.attempts] == ["interrupted"]

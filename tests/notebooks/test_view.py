"""The live grid, driven as a user drives it: buttons clicked, pages turned, the journal read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orchestrator import ItemStatus, JobStatus
from orchestrator.errors import ConfigError
from orchestrator.notebook import BatchView, results, run_batch, show_job, start_batch
from orchestrator.notebook.cards import ItemCard

from .conftest import MakeOrchestrator

MOCK = {"seed": 3, "latency_mean_s": 0.05}


def items(count: int) -> list[dict[str, str]]:
    return [{"id": f"page-{n:02d}", "prompt": f"picture number {n}"} for n in range(1, count + 1)]


def card(view: BatchView, item_id: str) -> ItemCard:
    return next(card for card in view.cards if card.item_id == item_id)


async def batch(make_orchestrator: MakeOrchestrator, count: int = 6, **options: Any) -> BatchView:
    options.setdefault("provider_options", {**MOCK, "fail_first": {"page-03": 1}})
    return await run_batch(
        items(count),
        orchestrator=make_orchestrator(),
        show=False,
        max_attempts=1,
        size="64x64",
        **options,
    )


async def test_the_grid_shows_every_image_its_picture_and_the_failure_in_words(
    make_orchestrator: MakeOrchestrator,
) -> None:
    view = await batch(make_orchestrator)
    assert view.header.done.value == "6/6 · partial"
    assert view.header.bar.value == 6 and view.header.bar.bar_style == "warning"
    assert [card.item_id for card in view.cards] == [f"page-{n:02d}" for n in range(1, 7)]
    failed = card(view, "page-03")
    assert failed.status.value == "failed"
    assert failed.error.value == "server error"
    assert failed.message.value == "mock: provider_options.fail_f…"  # cut to the card
    assert failed.retry.tooltip == (
        "Try this image again (mock: provider_options.fail_first fails attempt 1)"
    )
    assert not failed.retry.disabled and failed.cancel.disabled
    assert failed.frame.children == (failed.placeholder,)
    done = card(view, "page-01")
    assert done.status.value == "completed" and done.detail.value.startswith("attempt 1 · ")
    assert done.retry.disabled and done.cancel.disabled
    assert done.frame.children == (done.picture,)
    thumb = (await results(view))[0].thumbnail
    assert thumb is not None and done.picture.value == thumb.read_bytes()
    assert not view.header.retry_failed.disabled and view.header.cancel_job.disabled


async def test_clicking_retry_on_a_failed_card_runs_it_again_until_it_completes(
    make_orchestrator: MakeOrchestrator,
) -> None:
    view = await batch(make_orchestrator)
    card(view, "page-03").retry.click()
    async with asyncio.timeout(30):
        while view.header.message.value in ("", "…"):
            await asyncio.sleep(0.01)
    assert view.header.message.value == "retrying page-03 here"
    job = await view.wait()
    assert job.status == JobStatus.COMPLETED
    item = next(row for row in await results(view) if row.id == "page-03")
    assert item.status == "completed" and item.attempts == 2 and item.path is not None
    assert card(view, "page-03").status.value == "completed"
    assert card(view, "page-03").frame.children == (card(view, "page-03").picture,)
    assert view.header.done.value == "6/6 · completed"
    assert view.header.message.value == "retried page-03: completed"
    assert "Try this image again" == card(view, "page-03").retry.tooltip


async def test_retry_failed_and_cancel_job_act_on_the_whole_job(
    make_orchestrator: MakeOrchestrator,
) -> None:
    fails = {"page-02": 1, "page-05": 1}
    view = await batch(make_orchestrator, provider_options={**MOCK, "fail_first": fails})
    view.header.retry_failed.click()
    record = await view.wait()  # waits for the click's request first
    assert record.status == JobStatus.COMPLETED
    assert view.header.message.value == "retried 2 images: 2 completed"
    assert [row.attempts for row in await results(view)] == [1, 2, 1, 1, 2, 1]

    slow = start_batch(
        items(8),
        orchestrator=view.orchestrator,
        show=False,
        provider_options={"latency_mean_s": 30.0, "latency_distribution": "fixed"},
        concurrency=2,
    )
    handle = await slow.ready()
    while sum(item.status == ItemStatus.RUNNING for item in await handle.items()) < 2:
        await asyncio.sleep(0.01)
    slow.header.cancel_job.click()
    record = await slow.wait()
    assert record.status == JobStatus.CANCELLED
    statuses = [row.status for row in await results(slow)]
    assert statuses == ["cancelled"] * 8
    assert slow.header.cancel_job.disabled and slow.header.done.value == "8/8 · cancelled"


async def test_cancel_on_a_running_card_stops_that_image_only(
    make_orchestrator: MakeOrchestrator,
) -> None:
    slow = {"latency_mean_s": 30.0, "latency_distribution": "fixed"}
    view = start_batch(
        items(3), orchestrator=make_orchestrator(), show=False, provider_options=slow
    )
    handle = await view.ready()
    async with asyncio.timeout(30):
        while len(view.cards) < 3 or card(view, "page-02").cancel.disabled:
            await asyncio.sleep(0.02)
    card(view, "page-02").cancel.click()
    async with asyncio.timeout(30):
        while (await handle.item("page-02")).status != ItemStatus.CANCELLED:
            await asyncio.sleep(0.02)
    assert view.header.message.value == "cancelling page-02"
    others = [item.status for item in await handle.items() if item.id != "page-02"]
    assert others == [ItemStatus.RUNNING, ItemStatus.RUNNING]
    await handle.cancel()
    await view.wait()


async def test_pages_and_the_status_filter_choose_the_cards(
    make_orchestrator: MakeOrchestrator,
) -> None:
    fails = {f"page-{n:02d}": 1 for n in (4, 17, 29)}
    view = await batch(make_orchestrator, count=30, provider_options={**MOCK, "fail_first": fails})
    view.page_size = 12
    await view.refresh()
    shown = [card.item_id for card in view.cards if card.layout.display != "none"]
    assert shown == [f"page-{n:02d}" for n in range(1, 13)]
    assert view.page_label.value == "1-12 of 30" and view.previous.disabled
    view.next.click()
    await view.refresh()
    shown = [card.item_id for card in view.cards if card.layout.display != "none"]
    assert shown == [f"page-{n:02d}" for n in range(13, 25)]
    view.filter.value = "failed"
    await view.refresh()
    shown = [card.item_id for card in view.cards if card.layout.display != "none"]
    assert shown == ["page-04", "page-17", "page-29"]
    assert view.page_label.value == "1-3 of 3" and view.next.disabled


async def test_a_500_image_job_is_drawn_in_coalesced_updates(
    make_orchestrator: MakeOrchestrator,
) -> None:
    """Each event would move the bar once: 500 images make 2,000 events. Drawn every
    `DRAW_S`, the bar moves a few times a second, whatever the pace of the job."""
    loop = asyncio.get_running_loop()
    moves: list[int] = []
    started = loop.time()
    view = start_batch(
        [f"image {n}" for n in range(500)],
        orchestrator=make_orchestrator(),
        show=False,
        provider_options={"latency_mean_s": 0.0},
        concurrency=16,
        size="16x16",
    )
    view.header.bar.observe(lambda change: moves.append(change["new"]), names="value")
    job = await view.wait()
    took = loop.time() - started
    assert job.status == JobStatus.COMPLETED and view.header.bar.value == 500
    assert 0 < len(moves) <= took / 0.25 + 4, (len(moves), took)
    assert moves == sorted(moves)


async def test_show_job_draws_a_finished_job_and_refuses_an_unknown_one(
    make_orchestrator: MakeOrchestrator,
) -> None:
    view = await batch(make_orchestrator)
    again = await show_job(view.job_id or "", orchestrator=view.orchestrator, show=False)
    assert again.header.done.value == "6/6 · partial"
    assert card(again, "page-03").status.value == "failed"
    with pytest.raises(ConfigError, match="no-such-job"):
        await show_job("no-such-job", orchestrator=view.orchestrator, show=False)


async def test_stop_keeps_the_images_under_way_and_leaves_the_job_resumable(
    make_orchestrator: MakeOrchestrator,
) -> None:
    """Stop, unlike Cancel job, lets the requests under way finish (they may be billed) and
    keeps their images; nothing new starts and the job can be resumed."""
    slow = {"latency_mean_s": 2.0, "latency_distribution": "fixed"}
    view = start_batch(
        items(6), orchestrator=make_orchestrator(), show=False, provider_options=slow, concurrency=2
    )
    handle = await view.ready()
    async with asyncio.timeout(30):
        while sum(item.status == ItemStatus.RUNNING for item in await handle.items()) < 2:
            await asyncio.sleep(0.01)
        while view.header.stop.disabled:  # drawn a moment later
            await asyncio.sleep(0.02)
    view.header.stop.click()
    record = await view.wait()
    assert record.status == JobStatus.PENDING  # resumable
    assert view.header.message.value.startswith("stop requested: the requests under way finish")
    statuses = [row.status for row in await results(view)]
    assert statuses == ["completed", "completed", "pending", "pending", "pending", "pending"]
    assert view.header.stop.disabled and view.header.done.value.startswith("2/6")
    assert await view.stop() == "no process is running the job: nothing to stop"

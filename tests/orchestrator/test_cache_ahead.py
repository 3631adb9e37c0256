"""Before a job runs, which of its items the result cache already holds (the estimate a run
prints leaves them out), and what the estimate then says."""

from __future__ import annotations

import shutil
from pathlib import Path

from orchestrator.cache import ResultCache
from orchestrator.estimate import Estimate, ItemEstimate
from orchestrator.spec import parse_spec
from orchestrator.testing.scripted import ScriptedProvider, make_spec

from .conftest import MakeOrchestrator


async def test_a_new_job_s_items_an_earlier_job_paid_for_are_held_and_the_run_agrees(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider()
    orch = make_orchestrator(provider)
    await (await orch.submit(make_spec(3, key="first"))).wait()

    again = await orch.create(make_spec(4, key="again"))  # i0-i2 as before, and a new i3
    assert await orch.in_cache(again.id) == {"i0", "i1", "i2"}

    await (await orch.start(again.id)).wait()
    hits = {item.id for item in await again.items() if item.cached_from is not None}
    assert hits == {"i0", "i1", "i2"} and len(provider.calls) == 4  # only i3 was asked for
    assert await orch.in_cache(again.id) == hits  # the same answer once it ran: i3 was paid


async def test_nothing_is_held_without_the_cache_or_once_its_images_are_gone(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orch = make_orchestrator(ScriptedProvider())
    nothing_yet = await orch.create(make_spec(2, key="early"))
    assert await orch.in_cache(nothing_yet.id) == frozenset()
    await (await orch.submit(make_spec(2, key="first"))).wait()

    spec = make_spec(2, key="no-cache").model_dump()
    spec["cache"] = False
    assert await orch.in_cache((await orch.create(parse_spec(spec, "test"))).id) == frozenset()

    first_items = [
        item
        for job in await orch.jobs()
        if job.key == "first"
        for item in await orch.handle(job.id).items()
    ]
    for item in first_items:  # the user deletes the paying job's images, and the cache's
        orch.workspace.absolute(item.raw_path or "").unlink()
    shutil.rmtree(orch.workspace.cache_dir / "images")
    assert await orch.in_cache((await orch.create(make_spec(2, key="later"))).id) == frozenset()


async def test_an_item_that_waits_for_another_s_image_counts_as_paid(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orch = make_orchestrator(ScriptedProvider())
    await (await orch.submit(make_spec(2, key="first"))).wait()

    data = make_spec(2, key="again").model_dump()
    data["items"][1]["references"] = ["i0"]  # the same prompt, now sent with i0's image
    again = await orch.create(parse_spec(data, "test"))
    assert await orch.in_cache(again.id) == {"i0"}  # i1's request is not known yet


async def test_a_cache_never_written_is_not_opened_to_look(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    try:
        assert await cache.holds({"a" * 64}, besides="job") == set()
        assert not (tmp_path / "cache").exists()
    finally:
        cache.close()


def test_the_estimate_leaves_out_what_the_cache_holds() -> None:
    items = tuple(ItemEstimate(f"p{n}", 0.04) for n in range(5))
    estimate = Estimate("openai", "gpt-image-1.5", items).without(frozenset({"p0", "p1", "p2"}))

    assert estimate.total_usd == 0.08
    assert estimate.line() == (
        "estimated cost: $0.08 for 2 of 5 images (openai gpt-image-1.5, from the price table); "
        "3 come from the result cache"
    )
    shape = estimate.to_json()
    assert shape["cached"] == 3 and [item["cached"] for item in shape["items"]] == [
        True,
        True,
        True,
        False,
        False,
    ]
    plain = Estimate("openai", "gpt-image-1.5", items)
    assert plain.line().startswith("estimated cost: $0.20 for 5 images (")

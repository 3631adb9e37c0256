"""References between items: the anchor goes first and is sent with every other item, items
wait for the items they name, a failed reference fails its dependents without a call, and a
retry can take the dependents along. Through `Orchestrator` with a `ScriptedProvider` that
records the reference bytes of every call.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from orchestrator.errors import ConfigError, ContentRejectedError
from orchestrator.records import ItemRecord
from orchestrator.references import dependencies, dependents_of, graph_problem, outside_refs
from orchestrator.spec import JobSpec, parse_spec
from orchestrator.states import ItemStatus, JobStatus
from orchestrator.storage import Workspace
from orchestrator.testing.scripted import ScriptedProvider, png_bytes

from .conftest import MakeOrchestrator

COLOURS = {"hero": "red", "a": "navy", "b": "olive", "c": "plum"}


def story(count: int = 4, **config: Any) -> JobSpec:
    items = [{"id": "hero", "prompt": "the hero"}]
    items += [{"id": f"p{n}", "prompt": f"page {n}"} for n in range(1, count)]
    return _spec(items, consistency="first-as-reference", **config)


def _spec(items: list[dict[str, Any]], **config: Any) -> JobSpec:
    data = {
        "key": "story",
        "provider": "scripted",
        "limits": {"timeout_s": 600, "concurrency": 4},
        "output": {"format": "png", "thumbnail_px": 32},
        "items": items,
        **config,
    }
    return parse_spec(data, "test")


def provider(**script: Any) -> ScriptedProvider:
    images = {item: png_bytes(colour=colour) for item, colour in COLOURS.items()}
    return ScriptedProvider(dict(script), images=images)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def by_id(items: list[ItemRecord]) -> dict[str, ItemRecord]:
    return {item.id: item for item in items}


# ------------------------------------------------------------------ the graph, pure


def test_the_anchor_comes_first_then_the_items_own_references() -> None:
    spec = _spec(
        [
            {"id": "a", "prompt": "x"},
            {"id": "b", "prompt": "y", "references": ["c", "a", "/tmp/f.png"]},
            {"id": "c", "prompt": "z"},
        ],
        consistency="first-as-reference",
        anchor="c",
    )
    assert dependencies(spec.items, spec.consistency, spec.anchor) == {
        "a": ("c",),
        "b": ("c", "a"),
        "c": (),
    }


@pytest.mark.parametrize(
    ("items", "config", "message"),
    [
        (
            [{"id": "a", "prompt": "x", "references": ["a"]}],
            {},
            "items[0].references: item 'a' cannot reference itself",
        ),
        (
            [
                {"id": "a", "prompt": "x", "references": ["c"]},
                {"id": "b", "prompt": "y", "references": ["a"]},
                {"id": "c", "prompt": "z", "references": ["b"]},
            ],
            {},
            "items[0].references: the references go round in a circle (a -> c -> b -> a)",
        ),
        (
            [{"id": "a", "prompt": "x"}, {"id": "b", "prompt": "y", "references": ["b2", "b"]}],
            {},
            "items[1].references: item 'b' cannot reference itself",
        ),
        (
            # the anchor referencing a page makes a circle through the anchor rule
            [{"id": "a", "prompt": "x", "references": ["b"]}, {"id": "b", "prompt": "y"}],
            {"consistency": "first-as-reference"},
            "items[0].references: the references go round in a circle (a -> b -> a)",
        ),
        ([{"id": "a", "prompt": "x"}], {"anchor": "a"}, "anchor: an anchor needs"),
        (
            [{"id": "a", "prompt": "x"}],
            {"consistency": "first-as-reference", "anchor": "zz"},
            "anchor: 'zz' is not an item id of this job",
        ),
    ],
)
def test_bad_graphs_are_refused_naming_the_field(
    items: list[dict[str, Any]], config: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _spec(items, **config)
    assert str(caught.value).startswith(f"test: {message}")


def test_graph_problem_is_none_for_a_chain() -> None:
    spec = _spec(
        [
            {"id": "a", "prompt": "x"},
            {"id": "b", "prompt": "y", "references": ["a"]},
            {"id": "c", "prompt": "z", "references": ["b", "a"]},
        ]
    )
    assert graph_problem(spec.items, spec.consistency, spec.anchor) is None


def test_dependents_are_found_through_others_in_job_order() -> None:
    class Rec:
        def __init__(self, id: str, *deps: str) -> None:
            self.id, self.depends_on = id, deps

    items = [Rec("a"), Rec("d", "c"), Rec("b", "a"), Rec("c", "b"), Rec("e")]
    assert dependents_of(items, ["a"]) == ["d", "b", "c"]
    assert dependents_of(items, ["c"]) == ["d"]
    assert dependents_of(items, ["e"]) == []


# ------------------------------------------------------------------ running


async def test_the_anchor_is_made_first_and_sent_with_every_other_item(
    make_orchestrator: MakeOrchestrator, workspace: Workspace
) -> None:
    scripted = provider()
    orchestrator = make_orchestrator(scripted)
    job = await orchestrator.submit(story(6))
    assert (await job.wait()).status == JobStatus.COMPLETED
    items = by_id(await job.items())
    hero = items.pop("hero")
    assert hero.depends_on == () and {item.depends_on for item in items.values()} == {("hero",)}
    [hero_call] = scripted.calls_for("hero")
    assert hero_call.references == ()
    assert hero.finished_at is not None
    for item in items.values():
        [call] = scripted.calls_for(item.id)
        # sent the anchor's image as it was received, and only once the anchor was done
        assert [sha(ref) for ref in call.references] == [hero.raw_sha256]
        assert item.attempts[0].started_at >= hero.finished_at
    assert sha(png_bytes(colour="red")) == hero.raw_sha256


async def test_items_wait_for_the_items_they_name_and_get_their_images_in_order(
    make_orchestrator: MakeOrchestrator, workspace: Workspace, tmp_path: Any
) -> None:
    ref_file = tmp_path / "sketch.png"
    ref_file.write_bytes(png_bytes(colour="white"))
    scripted = provider()
    spec = _spec(
        [
            {"id": "c", "prompt": "z", "references": ["b", str(ref_file), "a"]},
            {"id": "b", "prompt": "y", "references": ["a"]},
            {"id": "a", "prompt": "x"},
        ]
    )
    job = await make_orchestrator(scripted).submit(spec)
    assert (await job.wait()).status == JobStatus.COMPLETED
    order = [call.item_id for call in scripted.calls]
    assert order == ["a", "b", "c"]  # each after what it references, whatever the spec order
    [call] = scripted.calls_for("c")
    # the referenced items' images first, in the order named, then the files
    wanted = [png_bytes(colour="olive"), png_bytes(colour="navy"), png_bytes(colour="white")]
    assert [sha(ref) for ref in call.references] == [sha(data) for data in wanted]
    items = by_id(await job.items())
    assert items["c"].depends_on == ("b", "a")
    assert items["c"].references == (str(ref_file),)


async def test_a_failed_anchor_fails_its_dependents_without_a_call(
    make_orchestrator: MakeOrchestrator,
) -> None:
    scripted = provider(hero=[ContentRejectedError("refused")])
    job = await make_orchestrator(scripted).submit(story(5))
    record = await job.wait()
    assert record.status == JobStatus.FAILED
    assert [call.item_id for call in scripted.calls] == ["hero"]  # nothing else was paid for
    items = by_id(await job.items())
    assert items.pop("hero").error.kind == "content_rejected"  # type: ignore[union-attr]
    for item in items.values():
        assert item.status == ItemStatus.FAILED and item.attempts == ()
        assert item.error is not None and item.error.kind == "reference"
        assert "the item it references, hero, failed (refused)" in item.error.message


async def test_a_failure_goes_down_a_chain(make_orchestrator: MakeOrchestrator) -> None:
    scripted = provider(a=[ContentRejectedError("no")])
    spec = _spec(
        [
            {"id": "a", "prompt": "x"},
            {"id": "b", "prompt": "y", "references": ["a"]},
            {"id": "c", "prompt": "z", "references": ["b"]},
            {"id": "d", "prompt": "w"},
        ]
    )
    job = await make_orchestrator(scripted).submit(spec)
    assert (await job.wait()).status == JobStatus.PARTIAL
    items = by_id(await job.items())
    assert items["d"].status == ItemStatus.COMPLETED
    assert items["b"].error is not None and "references, a, failed" in items["b"].error.message
    assert items["c"].error is not None and "references, b, failed" in items["c"].error.message
    assert sorted(call.item_id for call in scripted.calls) == ["a", "d"]


async def test_retrying_the_anchor_with_its_dependents_draws_them_from_the_new_image(
    make_orchestrator: MakeOrchestrator,
) -> None:
    scripted = provider(hero=[ContentRejectedError("refused")])
    job = await make_orchestrator(scripted).submit(story(4))
    await job.wait()
    assert await job.dependents(["hero"]) == ["p1", "p2", "p3"]
    retried = await job.retry_and_run(["hero"], with_dependents=True)
    assert retried.ids == ["hero", "p1", "p2", "p3"] and retried.here
    assert (await job.wait()).status == JobStatus.COMPLETED
    hero = (await job.item("hero")).raw_sha256
    for page in ("p1", "p2", "p3"):
        [call] = scripted.calls_for(page)
        assert [sha(ref) for ref in call.references] == [hero]


async def test_retrying_the_anchor_alone_leaves_its_dependents_failed(
    make_orchestrator: MakeOrchestrator,
) -> None:
    scripted = provider(hero=[ContentRejectedError("refused")])
    job = await make_orchestrator(scripted).submit(story(3))
    await job.wait()
    retried = await job.retry_and_run(["hero"])
    assert retried.ids == ["hero"]
    assert (await job.wait()).status == JobStatus.PARTIAL
    items = by_id(await job.items())
    assert items["hero"].status == ItemStatus.COMPLETED
    assert {items[p].status for p in ("p1", "p2")} == {ItemStatus.FAILED}
    assert await job.dependents(["hero"]) == ["p1", "p2"]
    # later, on their own: they are drawn from the anchor that is there now
    await job.retry_and_run(["p1", "p2"])
    assert (await job.wait()).status == JobStatus.COMPLETED


async def test_cancelling_the_anchor_fails_the_pages_that_waited_for_it(
    make_orchestrator: MakeOrchestrator,
) -> None:
    scripted = provider(hero=["hang"])
    job = await make_orchestrator(scripted).submit(story(3))
    while not scripted.calls:
        await _tick()
    await job.cancel_items(["hero"])
    record = await job.wait()
    assert record.status == JobStatus.CANCELLED  # nothing completed, something was cancelled
    items = by_id(await job.items())
    assert items["hero"].status == ItemStatus.CANCELLED
    for page in ("p1", "p2"):
        error = items[page].error
        assert error is not None and "hero, cancelled" in error.message
    assert [call.item_id for call in scripted.calls] == ["hero"]


async def test_a_resumed_job_sends_the_anchor_it_made_before(
    make_orchestrator: MakeOrchestrator,
) -> None:
    scripted = provider(p1=["hang"], p2=["hang"])
    first = make_orchestrator(scripted)
    job = await first.submit(story(3))
    while len(scripted.calls) < 3:
        await _tick()
    await first.aclose()  # interrupted with the pages in flight
    again = make_orchestrator(scripted)
    resumed = await again.start(job.id)
    assert (await resumed.wait()).status == JobStatus.COMPLETED
    assert len(scripted.calls_for("hero")) == 1  # the anchor was not made again
    hero = (await resumed.item("hero")).raw_sha256
    for page in ("p1", "p2"):
        assert [[sha(r) for r in call.references] for call in scripted.calls_for(page)] == [
            [hero],
            [hero],
        ]


async def _tick() -> None:
    import asyncio

    await asyncio.sleep(0.01)


class _NoCopies(set[str]):
    """A set of ids that must only be asked `in`: copying it per item made a 10,000-item job
    take seconds to create (10,000 copies of 10,000 ids)."""

    def __iter__(self) -> Any:
        raise AssertionError("the ids were copied")


def test_outside_refs_asks_the_ids_without_copying_them() -> None:
    spec = parse_spec(
        {
            "key": "k",
            "provider": "mock",
            "items": [
                {"id": "a", "prompt": "x"},
                {"id": "b", "prompt": "y", "references": ["a", "https://example.com/p.png"]},
            ],
        },
        "t",
    )
    ids = _NoCopies({"a", "b"})
    assert [outside_refs(item, ids) for item in spec.items] == [(), ("https://example.com/p.png",)]

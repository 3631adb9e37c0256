"""Images from the result cache are counted apart: a paying user sees what cost nothing."""

from __future__ import annotations

from orchestrator import ItemRecord
from orchestrator.events import ItemCompleted, ItemGenerated
from orchestrator.states import ItemStatus
from orchestrator.tally import Tally
from orchestrator.wording import counts_line

from .records_builder import T0, job_record
from .records_builder import item_record as _item


def _tally(*items: ItemRecord) -> Tally:
    return Tally.from_snapshot(job_record(len(items)), list(items), now=T0)


def _generated(item: str, seq: int, *, cached: bool) -> ItemGenerated:
    return ItemGenerated(
        seq=seq,
        ts=T0,
        job_id="j",
        item_id=item,
        status="running",
        bytes=1,
        width=1,
        height=1,
        cost_usd=0.0 if cached else 0.04,
        cached=cached,
    )


def _completed(item: str, seq: int) -> ItemCompleted:
    return ItemCompleted(
        seq=seq, ts=T0, job_id="j", item_id=item, status="completed", image_path="x.png"
    )


def test_a_hit_counts_from_the_cache_once_its_item_completes() -> None:
    tally = _tally(_item(0), _item(1), _item(2))
    tally.apply(_generated("i0", 1, cached=True))
    assert tally.from_cache() == 0  # received, not yet completed
    tally.apply(_completed("i0", 2))
    tally.apply(_generated("i1", 3, cached=False))
    tally.apply(_completed("i1", 4))

    assert tally.from_cache() == 1 and round(tally.cost_usd, 2) == 0.04
    assert counts_line(tally, T0).startswith("2 completed (1 from the cache) · 0 running")


def test_the_snapshot_knows_which_completed_items_the_cache_paid_for() -> None:
    done = {"status": ItemStatus.COMPLETED, "image_path": "x.png"}
    tally = _tally(_item(0, cached_from="old/i0", **done), _item(1, **done), _item(2))

    assert tally.from_cache() == 1
    assert "2 completed (1 from the cache)" in counts_line(tally, T0)


def test_without_hits_the_line_says_nothing_of_the_cache() -> None:
    tally = _tally(_item(0))
    tally.apply(_generated("i0", 1, cached=False))
    tally.apply(_completed("i0", 2))

    assert tally.from_cache() == 0 and "cache" not in counts_line(tally, T0)

"""The core benchmark's floor does what a run does for each image: the same files, a row each."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from PIL import Image

from benchmarks import core, floor, scenarios
from orchestrator import Workspace


def test_the_work_alone_makes_each_image_s_files_and_row(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "workspace")
    workspace.root.mkdir()
    floor.do_the_work(workspace, 10)  # one full commit of 8, then the last 2

    with sqlite3.connect(workspace.root / "floor.sqlite3") as journal:
        rows = journal.execute("SELECT id, path FROM items ORDER BY id").fetchall()
    assert [item for item, _ in rows] == [f"item-{n:05d}" for n in range(10)]
    for item, path in rows:
        raw = workspace.root / path
        assert raw == workspace.raw_path("floor", item, "png")
        assert raw.stat().st_nlink == 2  # the cache's link
        with Image.open(workspace.image_path("floor", item, "png")) as image:
            assert image.size == (16, 16)
        with Image.open(workspace.thumb_path("floor", item)) as thumb:
            assert thumb.format == "WEBP"


def test_the_table_shows_what_the_run_took_beyond_the_work_alone() -> None:
    run = scenarios.OverheadResult(
        items=1000,
        create_s=0.1,
        run_s=9.0,
        user_s=7.0,
        system_s=2.0,
        rss_before_kb=0,
        rss_peak_kb=0,
        rss_after_kb=0,
        peak_reset=True,
    )
    work = floor.FloorResult(items=1000, run_s=5.5, user_s=3.0, system_s=1.5)

    alone, beyond = core._floor_rows(run, work)

    assert (alone.value, alone.passed) == ("5.50 ms", None)
    assert (beyond.value, beyond.passed) == ("3.50 ms", None)

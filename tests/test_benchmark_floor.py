"""The core benchmark's floor does what a run does for each image: the same files, a row each."""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from benchmarks import core, floor
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


def test_the_table_shows_the_least_a_run_of_the_work_could_take(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    work = floor.FloorResult(items=1000, run_s=5.5, user_s=3.0, system_s=1.5)

    alone, least = core._floor_rows(work)

    assert (alone.value, alone.passed) == ("5.50 ms", None)
    assert (least.value, least.passed) == ("2.25 ms", None)  # 4.5 ms of CPU over 2 CPUs
    assert "2 CPUs" in least.metric


def test_a_run_asked_to_keep_its_files_leaves_them_for_the_benchmark_to_remove(
    tmp_path: Path,
) -> None:
    result = core._run_child("floor", 3, tmp_path)  # a real child process, as `core` runs it

    assert result["items"] == 3
    (kept,) = tmp_path.iterdir()  # the run's folder outlives its process
    assert len(list(kept.rglob("*.webp"))) == 3  # its thumbnails


def test_the_benchmark_removes_every_run_s_files_after_the_last_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[tuple[str, list[Path]]] = []
    work: dict[str, object] = {"items": 5, "run_s": 0.01, "user_s": 0.01, "system_s": 0.0}

    def run_child(kind: str, items: int, where: Path) -> dict[str, object]:
        seen.append((kind, sorted(where.iterdir())))  # what earlier runs left there
        (where / f"{kind}-{len(seen)}").mkdir()  # as a child told to keep its files does
        if kind == "floor":
            return work
        return {
            **work,
            "items": items,
            "create_s": 0.01,
            "rss_before_kb": 1,
            "rss_peak_kb": 2,
            "rss_after_kb": 2,
            "peak_reset": True,
        }

    monkeypatch.setattr(core, "_run_child", run_child)
    args = argparse.ArgumentParser()
    core.add_arguments(args)
    parsed = args.parse_args(["--sizes", "5,10", "--rss-items", "0", "--stall-items", "0"])
    parsed.dir = tmp_path

    assert core.main(parsed) == 0

    assert [kind for kind, _ in seen] == ["floor", "overhead", "overhead"]
    assert [len(left) for _, left in seen] == [1, 2, 3]  # the probe's files, then each run's
    assert list(tmp_path.iterdir()) == []  # nothing removed between runs, everything after
    out = capsys.readouterr().out
    assert "overhead per image, 10 items" in out
    assert re.search(r"Making a small file took \d+ us of CPU", out)

    parsed = args.parse_args(["--sizes", "5", "--rss-items", "0", "--stall-items", "0", "--keep"])
    parsed.dir = tmp_path
    assert core.main(parsed) == 0
    (kept,) = tmp_path.iterdir()  # asked to keep them: a run started next does not pay for them
    names = sorted(path.name for path in kept.iterdir())
    assert names[:2] == ["floor-4", "overhead-5"] and names[2].startswith("probe-")
    assert f"keeping the runs' files in {kept}" in capsys.readouterr().err

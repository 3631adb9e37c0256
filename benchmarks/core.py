"""The core benchmark (issue 7): what the orchestrator itself costs per image.

Against the mock provider answering at once (no latency, concurrency 8, one attempt) it measures:

- per-image overhead: wall time of `await orchestrator.run(job_id)` / items, for 16x16 PNGs, at
  each `--sizes` (target: at most 2 ms, and the largest size within 1.25 x of the smallest);
- peak RSS growth of the `--rss-items` run, from the built spec to the end of `run` (<= 100 MB);
- the event loop's longest stall while `--stall-items` 1024x1024 images are drawn and
  post-processed at full speed, seen by a task sleeping 5 ms at a time on that loop (<= 50 ms).

Every run happens in a fresh Python process and a new workspace; all are removed after the
last run, unless `--keep` (to start another run soon after: see `scenarios.scratch_folder`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import floor, report, scenarios
from .core_method import FILE_COST, FLOOR_METHOD, METHOD
from .report import Row

__all__ = ["add_arguments", "main"]

MAX_ITEMS = 10_000
"""A job spec holds at most this many items."""
TARGET_MS_PER_IMAGE = 2.0
TARGET_RATIO = 1.25
TARGET_RSS_MB = 100.0
TARGET_STALL_MS = 50.0
DEFAULT_TITLE = "Core benchmark"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[1_000, 10_000],
        metavar="N,N",
        help="item counts whose per-image overhead is measured (default: 1000,10000)",
    )
    parser.add_argument(
        "--rss-items",
        type=_count,
        default=10_000,
        metavar="N",
        help="item count whose peak RSS growth is reported; 0 skips it (default: 10000)",
    )
    parser.add_argument(
        "--stall-items",
        type=_count,
        default=100,
        metavar="N",
        help="1024x1024 images run while the loop is watched; 0 skips it (default: 100)",
    )
    parser.add_argument(
        "--write",
        type=Path,
        metavar="PATH",
        help="append the table to this markdown file (e.g. benchmarks/RESULTS.md)",
    )
    parser.add_argument(
        "--dir",
        type=_folder,
        metavar="FOLDER",
        help="make the temporary workspaces in this folder (default: the system's temporary "
        "folder); what making a file costs there is measured and shown",
    )
    parser.add_argument("--title", default=DEFAULT_TITLE, help="heading of the appended section")
    # One measurement in this process, its result as JSON on stdout: how the parent runs each.
    parser.add_argument("--child", choices=["overhead", "stall", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--items", type=_count, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the runs' files (say where): removing them makes a run started within "
        "minutes after it slower on some file systems (see scenarios.scratch_folder)",
    )


def main(args: argparse.Namespace) -> int:
    if args.child is not None:
        return _child(args.child, args.items, args.dir, keep=args.keep)
    run = report.describe_run()  # the load average before our own work adds to it
    # every run's files are kept until the last run is done (see `scenarios.scratch_folder`)
    with scenarios.scratch_folder("imagebatch-bench-", args.dir, keep=args.keep) as kept:
        where = Path(kept)
        file_us = floor.file_cost_us(where)
        work = floor.FloorResult(**_run_child("floor", min(args.sizes), where))
        overheads = _measure_overheads(args.sizes, args.rss_items, where)
        stall = _measure_stall(args.stall_items, where) if args.stall_items else None
        said = f"keeping the runs' files in {where}" if args.keep else "removing the runs' files"
        print(f"core: {said} ...", file=sys.stderr, flush=True)
    rows = _rows(args.sizes, overheads, work, args.rss_items, stall)
    details = _details(overheads, stall, work) + FILE_COST.format(us=file_us)
    body = "\n\n".join([report.render_table(rows), details, METHOD, FLOOR_METHOD])
    print(f"{report.render_run(run)}\n\n{body}")
    if args.write is not None:
        report.append_section(args.write, args.title, run, body)
        print(f"\nappended to {args.write}", file=sys.stderr)
    return 0


# ------------------------------------------------------------- measuring


def _measure_overheads(
    sizes: list[int], rss_items: int, where: Path
) -> dict[int, scenarios.OverheadResult]:
    """One fresh process per item count; the RSS figure comes from its own count's run."""
    counts = sorted(set(sizes) | ({rss_items} if rss_items else set()))
    results = {}
    for items in counts:
        results[items] = scenarios.OverheadResult(**_run_child("overhead", items, where))
    return results


def _measure_stall(items: int, where: Path) -> scenarios.StallResult:
    return scenarios.StallResult(**_run_child("stall", items, where))


def _run_child(kind: str, items: int, where: Path) -> dict[str, Any]:
    """Run one measurement in a new interpreter, its files left in `where`, and return what it
    printed, decoded."""
    command = [sys.executable, "-m", "benchmarks", "core", "--child", kind, "--items", str(items)]
    command += ["--dir", str(where), "--keep"]
    print(f"core: {kind}, {items:,} items ...", end=" ", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=report.REPO, stdout=subprocess.PIPE, text=True)
    print(f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    if done.returncode != 0:
        raise SystemExit(f"core: the {kind} run of {items} items failed ({done.returncode})")
    data: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return data


def _child(kind: str, items: int, where: Path | None, *, keep: bool) -> int:
    if items < 1:
        raise SystemExit("core: --child needs --items N (N >= 1)")
    result: scenarios.OverheadResult | scenarios.StallResult | floor.FloorResult
    if kind == "floor":
        result = floor.measure_floor(items, where, keep=keep)
    elif kind == "stall":
        result = asyncio.run(scenarios.measure_stall(items, where, keep=keep))
    else:
        result = asyncio.run(scenarios.measure_overhead(items, where, keep=keep))
    print(json.dumps(dataclasses.asdict(result)))
    return 0


# -------------------------------------------------------------- reporting


def _rows(
    sizes: list[int],
    overheads: dict[int, scenarios.OverheadResult],
    work: floor.FloorResult,
    rss_items: int,
    stall: scenarios.StallResult | None,
) -> list[Row]:
    rows = [_overhead_row(overheads[items]) for items in sorted(set(sizes))]
    rows += _floor_rows(work)
    if len(set(sizes)) > 1:
        rows.append(_ratio_row(overheads[min(sizes)], overheads[max(sizes)]))
    if rss_items:
        rows.append(_rss_row(overheads[rss_items]))
    if stall is not None:
        rows += _stall_rows(stall)
    return rows


def _overhead_row(result: scenarios.OverheadResult) -> Row:
    ms = result.ms_per_image
    return Row(
        metric=f"overhead per image, {result.items:,} items",
        value=f"{ms:.2f} ms",
        target=f"<= {TARGET_MS_PER_IMAGE:g} ms",
        passed=ms <= TARGET_MS_PER_IMAGE,
    )


def _ratio_row(small: scenarios.OverheadResult, large: scenarios.OverheadResult) -> Row:
    ratio = large.ms_per_image / small.ms_per_image
    return Row(
        metric=f"overhead ratio, {large.items:,} / {small.items:,} items",
        value=f"{ratio:.2f}",
        target=f"<= {TARGET_RATIO:g}",
        passed=ratio <= TARGET_RATIO,
    )


def _rss_row(result: scenarios.OverheadResult) -> Row:
    growth = result.peak_growth_mb
    note = "" if result.peak_reset else " (peak since start)"
    return Row(
        metric=f"peak RSS growth, {result.items:,} items",
        value=f"{growth:.1f} MB{note}",
        target=f"<= {TARGET_RSS_MB:g} MB",
        passed=growth <= TARGET_RSS_MB,
    )


def _stall_rows(stall: scenarios.StallResult) -> list[Row]:
    where = f"{stall.items:,} x 1024x1024"
    return [
        Row(
            metric=f"longest event-loop stall, {where}",
            value=f"{stall.max_ms:.1f} ms",
            target=f"<= {TARGET_STALL_MS:g} ms",
            passed=stall.max_ms <= TARGET_STALL_MS,
        ),
        Row(metric=f"99th percentile stall, {where}", value=f"{stall.p99_ms:.1f} ms"),
    ]


def _floor_rows(work: floor.FloorResult) -> list[Row]:
    """The work alone for as many images, and the least a run of it could take on this
    machine's CPUs (no targets: the issue's target is on the run's figure above)."""
    cpus = os.cpu_count() or 1
    cpu_ms = 1000 * (work.user_s + work.system_s) / work.items
    return [
        Row(
            metric=f"the work alone, one image after another, {work.items:,} items",
            value=f"{work.ms_per_image:.2f} ms",
        ),
        Row(
            metric=f"the work alone's CPU time over {cpus} CPUs: no run of it takes less",
            value=f"{cpu_ms / cpus:.2f} ms",
        ),
    ]


def _details(
    overheads: dict[int, scenarios.OverheadResult],
    stall: scenarios.StallResult | None,
    work: floor.FloorResult,
) -> str:
    lines = [
        "| items | create | run | per image | CPU per image: own code, kernel "
        "| peak RSS growth | RSS after run |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in overheads.values():
        user, system = (1000 * cpu / result.items for cpu in (result.user_s, result.system_s))
        lines.append(
            f"| {result.items:,} | {result.create_s:.2f} s | {result.run_s:.2f} s "
            f"| {result.ms_per_image:.2f} ms | {user:.2f} ms, {system:.2f} ms "
            f"| {result.peak_growth_mb:.1f} MB "
            f"| {(result.rss_after_kb - result.rss_before_kb) / 1024:+.1f} MB |"
        )
    user, system = (1000 * cpu / work.items for cpu in (work.user_s, work.system_s))
    lines.append(
        f"| {work.items:,}, the work alone | - | {work.run_s:.2f} s | {work.ms_per_image:.2f} ms "
        f"| {user:.2f} ms, {system:.2f} ms | - | - |"
    )
    if stall is not None:
        lines.append(
            f"\nStall run: {stall.items:,} images of 1024x1024 in {stall.run_s:.1f} s; "
            f"{stall.samples:,} wake-ups of a 5 ms sleep watched."
        )
    return "\n".join(lines)


# ------------------------------------------------------------- arguments


def _count(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= MAX_ITEMS:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..{MAX_ITEMS} (a job's limit)")
    return value


def _sizes(text: str) -> list[int]:
    sizes = [_count(part) for part in text.split(",") if part.strip()]
    if not sizes or 0 in sizes:
        raise argparse.ArgumentTypeError("give item counts of 1 or more, e.g. 1000,10000")
    return sizes


def _folder(text: str) -> Path:
    folder = Path(text)
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder; give an existing folder")
    return folder.resolve()

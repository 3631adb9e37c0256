"""The floor under the core benchmark's overhead: what each of its images costs with no
orchestration at all.

The same work a run does for one small image, done one image after another in one thread, by
the functions the run itself calls: the mock's seeded draws and its drawing, the check of the
answer, the raw file written durably (temporary file, fsync, rename, folder sync), the
post-processing (the processed image and the thumbnail), the result cache's link, and a row
in a SQLite table synced as the journal's are (WAL, `synchronous=FULL`, eight rows to a
commit, as concurrency 8 groups them). No event loop, no threads, no models, no events, no
lease, no second journal write per image.

Its wall time holds the disk's waits, which a run's concurrent slots overlap; its CPU time
cannot be overlapped, only spread over the CPUs. That CPU time over the CPU count is the least
any run of this work can take per image on this machine, whatever its design.
"""

from __future__ import annotations

import resource
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator import Workspace
from orchestrator.cache_files import keep_file
from orchestrator.imaging import check_image, process_bytes
from orchestrator.providers.mock_drawing import draw_png, seeded_random
from orchestrator.spec import OutputSpec
from orchestrator.storage import atomic_write, sha256_hex

from .scenarios import scratch_folder

__all__ = ["FloorResult", "do_the_work", "file_cost_us", "measure_floor"]

SIZE = (16, 16)
"""As `scenarios.small_spec` asks."""
OUTPUT = OutputSpec(format="png", thumbnail_px=16)
COMMIT_EVERY = 8
"""Rows to a commit: the journal's writer groups what the 8 slots record meanwhile."""


@dataclass(frozen=True)
class FloorResult:
    """The work alone for `items` small images, one after another in one thread."""

    items: int
    run_s: float
    user_s: float
    system_s: float

    @property
    def ms_per_image(self) -> float:
        return 1000 * self.run_s / self.items


def measure_floor(items: int, where: Path | None = None, *, keep: bool = False) -> FloorResult:
    """Do the work of `items` small images in a new workspace in `where`; time it."""
    with scratch_folder("imagebatch-floor-", where, keep=keep) as folder:
        workspace = Workspace(Path(folder) / "workspace")
        workspace.root.mkdir()
        cpu_before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        do_the_work(workspace, items)
        finished, cpu_after = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    return FloorResult(
        items=items,
        run_s=finished - started,
        user_s=cpu_after.ru_utime - cpu_before.ru_utime,
        system_s=cpu_after.ru_stime - cpu_before.ru_stime,
    )


def do_the_work(workspace: Workspace, items: int) -> None:
    """The files and rows of `items` small images, one image after another, in `workspace`
    (an existing folder); the rows go to `floor.sqlite3` there."""
    journal = _journal(workspace.root / "floor.sqlite3")
    workspace.cache_dir.mkdir()  # as the run's cache folder is, once opened
    try:
        rows: list[tuple[str, str, str]] = []
        made: set[Path] = set()  # the cache's folders made already, as the run's cache keeps
        for n in range(items):
            rows.append(_one_image(workspace, f"item-{n:05d}", f"benchmark image {n}", made))
            if len(rows) == COMMIT_EVERY or n == items - 1:
                with journal:  # one transaction
                    journal.executemany("INSERT INTO items VALUES (?, ?, ?)", rows)
                rows.clear()
    finally:
        journal.close()


def _journal(path: Path) -> sqlite3.Connection:
    journal = sqlite3.connect(path)
    journal.execute("PRAGMA journal_mode=WAL")
    journal.execute("PRAGMA synchronous=FULL")
    journal.execute("CREATE TABLE items (id TEXT PRIMARY KEY, sha256 TEXT, path TEXT)")
    return journal


def _one_image(
    workspace: Workspace, item_id: str, prompt: str, made: set[Path]
) -> tuple[str, str, str]:
    """What the run does for one item, less the orchestration: the row to record."""
    root = workspace.root
    seeded_random(f"1|{item_id}|{prompt}|1").random()  # the mock's fault and latency draws
    seed = f"1|None|{prompt}|16x16|-"  # as the mock seeds it
    data = draw_png(seed=seed, size=SIZE, prompt=prompt, label=item_id, reference=None)
    info = check_image(data)
    raw = workspace.raw_path("floor", item_id, info.ext)
    atomic_write(raw, data, root=root)
    sha256 = sha256_hex(data)
    image, thumb = (
        workspace.image_path("floor", item_id, "png"),
        workspace.thumb_path("floor", item_id),
    )
    process_bytes(data, image, thumb, OUTPUT, root)
    keep_file(workspace.cache_dir, sha256, raw, data, made)  # the cache's link, as a run's
    return item_id, sha256, workspace.relative(raw)


def file_cost_us(where: Path, files: int = 300) -> float:
    """The CPU time, own and the kernel's, in microseconds, that making a small file takes in
    `where` now. On a file system that checks recently deleted inodes as it makes a file (see
    `scenarios.scratch_folder`) it is several times more for minutes after many files were
    removed, and so is every run's cost per image: the report says it beside the figures."""
    folder = Path(tempfile.mkdtemp(prefix="probe-", dir=where))
    started = time.process_time()
    for n in range(files):
        with open(folder / f"{n}.tmp", "xb") as handle:
            handle.write(b"\0" * 256)
    return 1e6 * (time.process_time() - started) / files

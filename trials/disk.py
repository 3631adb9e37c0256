"""Hostile disk: a symbolic link planted at each folder and file a job writes, and a FIFO or a
device given as the spec or as a reference.

For each planted link a fresh workspace runs one job; the links point into a `sentinel/`
folder beside the workspace (an empty folder, and a file with known bytes), which must be the
same afterwards: nothing written through a link. The command must end within its timeout, and
either refuse the link (exit 2, one line) or step around it (exit 0, the link replaced, not
followed). A pipe or a device as the spec, or as a reference (named in the spec, or put in the
reference's place after the job was created), must be refused, never waited on."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ._cli import (
    FAST,
    Outcome,
    base_env,
    cli,
    error_line,
    in_parallel,
    snapshot,
    spread,
    write_spec,
)
from ._serve import Answer, png, serving
from .registry import Result, Rounds, trial

TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Plant:
    where: str
    """Relative to the workspace; `{job}` is the job's id (planted after `create`)."""
    folder: bool
    fifo: bool = False
    """A FIFO in the place (rather than a link): never waited on."""
    """A link to a folder (else to a file)."""


PLANTS = [
    Plant("journal", folder=True),
    Plant("journal/journal.sqlite3", folder=False),
    Plant("journal/journal.sqlite3-wal", folder=False),
    Plant("journal/journal.sqlite3-shm", folder=False),
    Plant("journal/journal.sqlite3-journal", folder=False),
    Plant("cache", folder=True),
    Plant("cache/cache.db", folder=False),
    Plant("quota.sqlite", folder=False),
    Plant("references", folder=True),
    Plant("logs", folder=True),
    Plant("logs/{job}.log", folder=False),
    Plant("images", folder=True),
    Plant("images/{job}", folder=True),
    Plant("images/{job}/raw", folder=True),
    Plant("images/{job}/thumbs", folder=True),
    Plant("images/{job}/raw/a.png", folder=False),
    Plant("images/{job}/a.jpg", folder=False),
    Plant("images/{job}/thumbs/a.webp", folder=False),
    Plant("journal/journal.sqlite3", folder=False, fifo=True),
    Plant("quota.sqlite", folder=False, fifo=True),
    Plant("cache/cache.db", folder=False, fifo=True),
    Plant("logs/{job}.log", folder=False, fifo=True),
    Plant("images/{job}/raw/a.png", folder=False, fifo=True),
]
SENTINEL_BYTES = b"sentinel: nothing may write here\n"


def _spec(case: Path, url: str) -> Path:
    spec = {
        "key": "disk",
        "provider": "mock",
        "provider_options": FAST,
        "limits": {"rate_per_minute": 6000},  # so the workspace's quota file is used
        "items": [{"id": "a", "prompt": "a lighthouse", "references": [f"{url}/ref.png"]}],
    }
    return write_spec(case, "spec.json", spec)


def _plant(ws: Path, where: str, plant: Plant, sentinel: Path) -> None:
    link = ws / where
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_dir() and not link.is_symlink():
        link.rmdir()  # made empty by `create`
    elif os.path.lexists(link):
        link.unlink()
    if plant.fifo:
        os.mkfifo(link)
    else:
        os.symlink(sentinel / ("folder" if plant.folder else "file"), link)


def _run_with_plant(case: Path, plant: Plant, url: str) -> tuple[Outcome, str]:
    """Plant the link (before the job is created, or after for the job's own folders) and run
    the job; the run's outcome and the job id."""
    ws = case / "ws"
    spec = _spec(case, url)
    env = base_env(IMAGEBATCH_ALLOW_LOCAL_URLS="1")
    sentinel = case / "sentinel"
    if "{job}" not in plant.where:
        _plant(ws, plant.where, plant, sentinel)
        if plant.where == "logs":
            return cli(ws, "run", str(spec), "--detach", env=env, timeout=TIMEOUT_S), ""
        return cli(ws, "run", str(spec), env=env, timeout=TIMEOUT_S), ""
    created = cli(ws, "create", str(spec), env=env, timeout=TIMEOUT_S)
    job = created.out.strip().splitlines()[0] if created.code == 0 else "?"
    _plant(ws, plant.where.format(job=job), plant, sentinel)
    detach = ["--detach"] if plant.where.startswith("logs") else []
    return cli(ws, "start", job, *detach, env=env, timeout=TIMEOUT_S), job


def _try_plant(case: Path, plant: Plant, url: str) -> str | None:
    sentinel = case / "sentinel"
    (sentinel / "folder").mkdir(parents=True)
    (sentinel / "file").write_bytes(SENTINEL_BYTES)
    before = snapshot(sentinel)
    ended, job = _run_with_plant(case, plant, url)
    problems = []
    if snapshot(sentinel) != before:
        problems.append(f"written through the link: {sorted(snapshot(sentinel))}")
    link = case / "ws" / plant.where.format(job=job)
    if ended.hung:
        problems.append("hung")
    elif ended.code == 2:
        if error_line(ended.err) is None:
            problems.append(f"refused without a one-line reason: {ended.err[-300:]!r}")
    elif ended.code != 0 or "Traceback" in ended.err:
        problems.append(f"exit {ended.code}: {ended.err.strip()[-300:]!r}")
    elif os.path.islink(link) or (plant.fifo and stat.S_ISFIFO(os.lstat(link).st_mode)):
        problems.append("ran with the link or FIFO left in place")
    what = "FIFO" if plant.fifo else "link"
    return f"{what} at {plant.where}: {'; '.join(problems)}" if problems else None


@dataclass(frozen=True)
class Special:
    label: str
    spec_path: str | None
    """The spec itself is this (`<fifo>` a FIFO made for the case), or None: a good spec."""
    reference: str | None = None
    """The item's reference, or None."""
    swap_after_create: bool = False
    """The reference is a good image at `create`, then replaced by a FIFO before `start`."""


SPECIALS = [
    Special("FIFO as spec", "<fifo>"),
    Special("/dev/zero as spec", "/dev/zero"),
    Special("/dev/urandom as spec", "/dev/urandom"),
    Special("link to /dev/zero as spec", "<link:/dev/zero>"),
    Special("FIFO as reference", None, "<fifo>"),
    Special("/dev/zero as reference", None, "/dev/zero"),
    Special("link to /dev/urandom as reference", None, "<link:/dev/urandom>"),
    Special("reference swapped for a FIFO after create", None, "ref.png", swap_after_create=True),
]


def _special_file(case: Path, name: str, what: str) -> str:
    """`what` made real in `case` as `name`: a FIFO, a link, or a device's own path."""
    path = case / name
    if what == "<fifo>":
        os.mkfifo(path)
    elif what.startswith("<link:"):
        os.symlink(what[len("<link:") : -1], path)
    else:
        return what
    return str(path)


def _try_special(case: Path, special: Special) -> str | None:
    ws = case / "ws"
    env = base_env()
    item: dict[str, object] = {"id": "a", "prompt": "a lighthouse"}
    if special.reference is not None:
        (case / "ref.png").write_bytes(png())
        ref = special.reference
        item["references"] = [ref if ref == "ref.png" else _special_file(case, "weird", ref)]
    spec = write_spec(case, "spec.json", {"key": "dev", "provider_options": FAST, "items": [item]})
    if special.spec_path is not None:
        spec = Path(_special_file(case, "spec-special.json", special.spec_path))
    if special.swap_after_create:
        created = cli(ws, "create", str(spec), env=env, timeout=TIMEOUT_S)
        (case / "ref.png").unlink()
        os.mkfifo(case / "ref.png")
        ended = cli(ws, "start", created.out.strip(), env=env, timeout=TIMEOUT_S)
        allowed = {2, 4}  # refused at start, or the item failed with the reason
    else:
        ended = cli(ws, "run", str(spec), env=env, timeout=TIMEOUT_S)
        allowed = {2}
    problems = []
    if ended.hung:
        problems.append(f"hung for {TIMEOUT_S:g} s")
    elif ended.code not in allowed or "Traceback" in ended.err:
        problems.append(f"exit {ended.code}: {ended.err.strip()[-300:]!r}")
    elif ended.code == 2 and error_line(ended.err) is None:
        problems.append(f"not one line: {ended.err.strip()[-300:]!r}")
    return f"{special.label}: {'; '.join(problems)}" if problems else None


@trial(
    "hostile disk",
    "symlinks planted at every folder and file the job writes, a FIFO or device as spec or "
    "reference: 0 files written outside the workspace; no hang; exit 2 with a reason",
)
def hostile_disk(rounds: Rounds) -> Result:
    plants = spread(PLANTS, rounds.count(7, len(PLANTS)))
    specials = spread(SPECIALS, rounds.count(3, len(SPECIALS)))
    with serving(lambda path: Answer(body=png())) as served:
        work = [(rounds.folder / f"plant-{n:02d}", p) for n, p in enumerate(plants)]
        for folder, _ in work:
            folder.mkdir()
        failures = in_parallel(work, lambda pair: _try_plant(*pair, served.url))
    work2 = [(rounds.folder / f"special-{n:02d}", s) for n, s in enumerate(specials)]
    for folder, _ in work2:
        folder.mkdir()
    failures += in_parallel(work2, lambda pair: _try_special(*pair))
    failed = [failure for failure in failures if failure]
    through = sum("written through" in failure for failure in failed)
    hung = sum("hung" in failure for failure in failed)
    return Result(
        f"{len(plants)} links and FIFOs planted (of {len(PLANTS)}), {len(specials)} pipes/devices "
        "as spec or reference: "
        f"{through} wrote outside, {hung} hung, {len(failed)} failed in all",
        passed=not failed,
        details=tuple(failed),
    )

"""Item ids and job keys from a traversal corpus (`../`, absolute paths, NUL, 300 characters,
`.` and `..`, backslashes, look-alike dots): every write stays inside the workspace, and a name
that is not a valid one is refused with exit 2 and one line naming the field.

Each case runs in a folder of its own with the workspace eight folders down, so that a name
climbing out of the workspace lands in the case's folder, where it is seen; absolute names
point at the case's own `outside/` folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ._cli import FAST, base_env, cli, in_parallel, one_line, snapshot, spread, write_spec
from .registry import Result, Rounds, trial

DEEP = Path(*[f"d{level}" for level in range(8)], "ws")
OUTSIDE = "<outside>"
"""Replaced by the case's `outside/` folder: an absolute path the case can check."""


@dataclass(frozen=True)
class Name:
    text: str
    valid_for: tuple[str, ...] = ()
    """Fields where the README allows it: it may run (exit 0), but writes inside the workspace.
    A key is only the start of a job id (`<key>-<6 hex>`), so `.` and `..` are fine there."""


CORPUS = [
    Name("../x"),
    Name("../../../../../../../../../../x"),
    Name("a/../../../../b"),
    Name(f"{OUTSIDE}/x"),
    Name("..", valid_for=("key",)),
    Name(".", valid_for=("key",)),
    Name("..\\..\\x"),
    Name("a\\b"),
    Name("a\x00b"),
    Name("x" * 300),
    Name("a\n"),
    Name("\uff0e\uff0e"),  # fullwidth dots
    Name("\u2025"),  # two-dot leader
    Name("..%2f..%2fx"),
    Name("~/x"),
    Name(""),
    Name("a-b_c.1", valid_for=("id", "key")),
]


def _spec(field: str, text: str) -> dict[str, object]:
    spec: dict[str, object] = {"key": "names", "provider": "mock", "provider_options": FAST}
    item = {"id": "a", "prompt": "a lighthouse"}
    if field == "key":
        spec["key"] = text
    else:
        item["id"] = text
    spec["items"] = [item]
    return spec


def _try(case: Path, field: str, name: Name) -> str | None:
    """Run a job whose `field` is the name; what went wrong, or None."""
    text = name.text.replace(OUTSIDE, str(case / "outside"))
    (case / "outside").mkdir(parents=True)
    spec = write_spec(case, "spec.json", _spec(field, text))
    ws = case / DEEP
    ws.parent.mkdir(parents=True)
    before = snapshot(case)
    ended = cli(ws, "run", str(spec), env=base_env(), timeout=30, cwd=case)
    after = {path: kind for path, kind in snapshot(case).items() if not _in_ws(path)}
    problems = []
    if after != {path: kind for path, kind in before.items() if not _in_ws(path)}:
        added = sorted(set(after) - set(before))
        problems.append(f"written outside the workspace: {added[:3]}")
    if ended.code == 2:
        line = one_line(ended.err) or ""
        field_named = "items[0].id" if field == "id" else "key"
        if field_named not in line:
            problems.append(f"the reason does not name {field_named}: {ended.err[-200:]!r}")
        if os.path.lexists(ws):
            problems.append("refused, yet the workspace was made")
    elif ended.code != 0 or field not in name.valid_for:
        problems.append(f"exit {ended.code}: {ended.err.strip()[-200:]!r}")
    return f"{field} {name.text[:40]!r}: {'; '.join(problems)}" if problems else None


def _links_at_targets(case: Path) -> str | None:
    """Links planted at the very files item `a` is written to, after `create`: they are
    replaced, never written through."""
    outside = case / "outside"
    outside.mkdir(parents=True)
    spec = write_spec(case, "spec.json", _spec("id", "a"))
    ws = case / "ws"
    created = cli(ws, "create", str(spec), env=base_env(), timeout=30)
    job = created.out.strip()
    targets = ["raw/a.png", "a.jpg", "thumbs/a.webp"]
    for n, target in enumerate(targets):
        (outside / str(n)).write_bytes(b"not yours")
        link = ws / "images" / job / target
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(outside / str(n))
    ended = cli(ws, "start", job, env=base_env(), timeout=30)
    kept = all((outside / str(n)).read_bytes() == b"not yours" for n in range(len(targets)))
    if ended.code in (0, 2) and "Traceback" not in ended.err and kept:
        return None
    return f"links at the targets: exit {ended.code}, outside files kept: {kept}"


def _in_ws(path: str) -> bool:
    return path == str(DEEP) or path.startswith(str(DEEP) + os.sep)


@trial(
    "traversal names",
    "item ids and names from a traversal corpus (../, absolute, symlink at the target, NUL, "
    "300 chars): every write stays inside the workspace; 0 files outside",
)
def traversal_names(rounds: Rounds) -> Result:
    cases = [(field, name) for name in CORPUS for field in ("id", "key")]
    chosen = spread(cases, rounds.count(8, len(cases)))
    work = [
        (rounds.folder / f"case-{n:02d}", field, name) for n, (field, name) in enumerate(chosen)
    ]
    names_failed = [f for f in in_parallel(work, lambda args: _try(*args)) if f]
    targets_failed = [f for f in [_links_at_targets(rounds.folder / "targets")] if f]
    failures = names_failed + targets_failed
    outside = sum("outside" in failure for failure in failures)
    return Result(
        f"{len(chosen) - len(names_failed)}/{len(chosen)} hostile ids and keys (of {len(cases)}) "
        f"refused with exit 2 naming the field, or kept inside; links at the target files "
        f"{'replaced' if not targets_failed else 'FOLLOWED or failed'}; {outside} wrote outside",
        passed=not failures,
        details=tuple(failures),
    )

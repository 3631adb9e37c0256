"""Bad specs: a corpus of malformed inputs given to `imagebatch run SPEC`, each of which must
end with exit 2, one line on stderr that names the field (or the file) at fault, no traceback,
and nothing written: the workspace is not even created, and the spec's folder is unchanged."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._cli import FAST, base_env, cli, in_parallel, one_line, snapshot, spread
from .registry import Result, Rounds, trial

GOOD_ITEM = {"id": "a", "prompt": "a lighthouse"}


def _spec(**fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"key": "bad", "provider": "mock", "provider_options": FAST}
    spec["items"] = [GOOD_ITEM]
    spec.update(fields)
    return spec


def _limits(**limits: Any) -> dict[str, Any]:
    return _spec(limits=limits)


def _item(**fields: Any) -> dict[str, Any]:
    return _spec(items=[{**GOOD_ITEM, **fields}])


@dataclass(frozen=True)
class Case:
    label: str
    content: bytes | dict[str, Any] | list[Any] | None
    """What the spec file holds (a dict or list is written as JSON); None: no file at all."""
    names: str
    """What the one-line reason must name."""
    file: str = "spec.json"


HOOK = {"url": "https://hooks.example.com/x", "secret_env": "TRIAL_NO_SUCH_SECRET"}
CASES = [
    Case("invalid JSON", b'{"key": "x", "items": [', "spec.json"),
    Case("empty file", b"", "spec.json"),
    Case("binary bytes", bytes(range(256)) * 4, "spec.json"),
    Case("BOM then a list", b"\xef\xbb\xbf[1, 2]", "spec.json"),
    Case(
        "NaN for a number",
        b'{"items": [{"id": "a", "prompt": "x"}], "limits": {"timeout_s": NaN}}',
        "limits.timeout_s",
    ),
    Case("missing file", None, "spec.json"),
    Case("a folder as spec", b"<folder>", "spec.json"),
    Case("yaml extension", b"key: x\n", "yaml", file="spec.yaml"),
    Case("txt that is JSON", b'{"items": []}', "JSON", file="spec.txt"),
    Case("jsonl bad line", b'{"id": "a", "prompt": "x"}\n{"id": 3\n', "line 2", file="s.jsonl"),
    Case("top level a string", b'"just a string"', "spec.json"),
    Case("no items", _spec(items=[]), "items"),
    Case("items missing", {"key": "x", "provider": "mock"}, "items"),
    Case("items a dict", _spec(items={"a": "x"}), "items"),
    Case("unknown field", _spec(colour="red"), "colour"),
    Case("unknown item field", _item(promt="x"), "promt"),
    Case("duplicate ids", _spec(items=[GOOD_ITEM, GOOD_ITEM]), "items[1]"),
    Case("id with a space", _item(id="a b"), "items[0].id"),
    Case("empty prompt", _item(prompt=""), "prompt"),
    Case("prompt a number", _item(prompt=42), "prompt"),
    Case("priority huge", _item(priority=10**30), "priority"),
    Case("concurrency 0", _limits(concurrency=0), "concurrency"),
    Case("concurrency a string", _limits(concurrency="3"), "concurrency"),
    Case("concurrency negative", _limits(concurrency=-4), "concurrency"),
    Case("rate negative", _limits(rate_per_minute=-5.0), "rate_per_minute"),
    Case("timeout 0", _limits(timeout_s=0.0), "timeout_s"),
    Case(
        "timeout 1e999",
        b'{"items": [{"id": "a", "prompt": "x"}], "limits": {"timeout_s": 1e999}}',
        "timeout_s",
    ),
    Case("max attempts huge", _limits(max_attempts=10**12), "max_attempts"),
    Case("budget negative", _limits(budget_usd=-1.0), "budget_usd"),
    Case("max_concurrency without auto", _limits(max_concurrency=8), "max_concurrency"),
    Case("size words", _item(size="big"), "items[0].size"),
    Case("size zero", _item(size="0x0"), "items[0].size"),
    Case("size enormous", _item(size="99999999x99999999"), "items[0].size"),
    Case("bad output format", _spec(output={"format": "bmp"}), "output.format"),
    Case("output quality 1000", _spec(output={"quality": 1000}), "output.quality"),
    Case("thumbnail 5 px", _spec(output={"thumbnail_px": 5}), "thumbnail_px"),
    Case("unknown provider", _spec(provider="nonesuch"), "nonesuch"),
    Case("unknown mock option", _spec(provider_options={"colour": 1}), "colour"),
    Case("unknown consistency", _spec(consistency="sometimes"), "consistency"),
    Case("anchor not an item", _spec(anchor="ghost"), "anchor"),
    Case("reference to an unknown id", _item(references=["ghost"]), "references"),
    Case(
        "references in a circle",
        _spec(
            items=[
                {"id": "a", "prompt": "x", "references": ["b"]},
                {"id": "b", "prompt": "y", "references": ["a"]},
            ]
        ),
        "references",
    ),
    Case("reference ftp URL", _item(references=["ftp://example.com/a.png"]), "references"),
    Case("unknown preset", _spec(defaults={"preset": "nonesuch"}), "preset"),
    Case("webhook ftp URL", _spec(webhook={**HOOK, "url": "ftp://example.com/x"}), "webhook"),
    Case("webhook secret unset", _spec(webhook=HOOK), "TRIAL_NO_SUCH_SECRET"),
    Case("name too long", _spec(name="n" * 5000), "name"),
    Case("unknown model", _spec(model="nope-1"), "model"),
    Case("seed a float", _item(seed=1.5), "items[0].seed"),
]


def _write(folder: Path, case: Case) -> Path:
    path = folder / case.file
    if case.content == b"<folder>":
        path.mkdir()
    elif isinstance(case.content, bytes):
        path.write_bytes(case.content)
    elif case.content is not None:
        path.write_text(json.dumps(case.content), encoding="utf-8")
    return path


def _try(folder: Path, case: Case) -> str | None:
    """Run `imagebatch run` on the case's file; what went wrong, or None."""
    spec = _write(folder, case)
    before = snapshot(folder)
    ws = folder / "ws"
    ended = cli(ws, "run", str(spec), env=base_env(), timeout=30, cwd=folder)
    line = one_line(ended.err)
    problems = []
    if ended.code != 2:
        problems.append(f"exit {ended.code}")
    if line is None:
        problems.append(f"not one line: {ended.err.strip()[-300:]!r}")
    elif case.names.lower() not in line.lower():
        problems.append(f"does not name {case.names!r}: {line!r}")
    if os.path.lexists(ws) or snapshot(folder) != before:
        problems.append("something was written")
    return f"{case.label}: {'; '.join(problems)}" if problems else None


def _big(folder: Path) -> str | None:
    """A sparse 100 MB spec: refused by its size, before it is read."""
    path = folder / "big.json"
    with open(path, "wb") as file:
        file.truncate(100 * 1024 * 1024)
    return _try(folder, Case("100 MB spec", None, "larger than", file="big.json"))


@trial(
    "bad specs",
    "a corpus of at least 30 malformed inputs: each exit 2 with a one-line reason naming the "
    "field, nothing written",
)
def bad_specs(rounds: Rounds) -> Result:
    folders = []
    for index, case in enumerate(spread(CASES, rounds.count(10, len(CASES)))):
        folder = rounds.folder / f"case-{index:02d}"
        folder.mkdir()
        folders.append((folder, case))
    failures = [f for f in in_parallel(folders, lambda pair: _try(*pair)) if f]
    big = rounds.folder / "big"
    big.mkdir()
    failures += [f for f in [_big(big)] if f]
    total = len(folders) + 1
    good = total - len(failures)
    return Result(
        f"{good}/{total} malformed specs (of a corpus of {len(CASES) + 1}) refused with exit 2, "
        "one line naming the field, nothing written",
        passed=not failures and len(CASES) + 1 >= 30,
        details=tuple(failures),
    )

"""Reading a spec from a file or standard input: JSON, JSONL or text (one prompt per line).

A spec's format comes from its extension (`.json`, `.jsonl`, `.txt`) or an explicit format;
anything else is refused rather than read as one prompt per line (and billed). Reads are
bounded: a spec larger than `MAX_SPEC_BYTES` is refused before it is read.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, BinaryIO, Literal

from .errors import ConfigError, UnusableFileError
from .references import is_url
from .spec import JobSpec, parse_spec
from .storage import read_regular

__all__ = ["MAX_SPEC_BYTES", "SpecFormat", "load_spec"]

SpecFormat = Literal["json", "jsonl", "text"]
FORMATS_BY_SUFFIX: dict[str, SpecFormat] = {".json": "json", ".jsonl": "jsonl", ".txt": "text"}
MAX_SPEC_BYTES = 64 * 1024 * 1024
"""Largest spec read; a bigger file is refused before it is read."""
STDIN_PATH = "-"
"""The spec path that means standard input."""
STDIN_NAME = "stdin"
"""The default key and name of a spec read from standard input, and its name in messages."""


def load_spec(
    path: Path, fmt: SpecFormat | None = None, *, stdin: BinaryIO | None = None
) -> JobSpec:
    """Read a spec from a `.json`, `.jsonl` or `.txt` file (one prompt per line), or from `-`.

    `fmt` overrides the extension. The path `-` reads `stdin` (default: this process's standard
    input) and needs `fmt`. Any other extension, or none, is refused rather than read as text,
    and so is a `.txt` file that looks like JSON unless `fmt` is `"text"`. A spec from `-` is
    keyed and named `stdin` unless it says otherwise; its references are relative to the
    current folder.
    """
    if str(path) == STDIN_PATH:
        return _load_stdin(fmt, stdin)
    kind = fmt or _format_of(path)
    text = _decode(_read_file(path), str(path))
    if fmt is None and kind == "text" and _looks_like_json(text):
        raise ConfigError(
            f"{path}: looks like JSON; rename it to .json, or say the format is text if these "
            "really are prompts",
            option="format:text",
        )
    return _spec_from_text(text, kind, str(path), path.stem, path.parent)


def _load_stdin(fmt: SpecFormat | None, stdin: BinaryIO | None) -> JobSpec:
    if fmt is None:
        raise ConfigError(
            f"{STDIN_PATH}: a spec on standard input has no extension to tell its format; "
            "say which format it is (json, jsonl or text)",
            option="format",
        )
    stream = stdin if stdin is not None else sys.stdin.buffer
    try:
        data = _read_at_most(stream, STDIN_NAME)
    except OSError as error:
        raise ConfigError(
            f"{STDIN_NAME}: cannot read the spec ({error.__class__.__name__})"
        ) from None
    text = _decode(data, STDIN_NAME)
    return _spec_from_text(text, fmt, STDIN_NAME, STDIN_NAME, Path.cwd())


def _format_of(path: Path) -> SpecFormat:
    suffix = path.suffix.lower()
    if suffix in FORMATS_BY_SUFFIX:
        return FORMATS_BY_SUFFIX[suffix]
    what = f"unknown spec format {path.suffix!r}" if suffix else "no extension to tell its format"
    raise ConfigError(
        f"{path}: {what}; the accepted formats are .json, .jsonl and .txt: convert or rename "
        "the file, or say which format it is",
        option="format",
    )


def _read_file(path: Path) -> bytes:
    """The file's bytes; a regular file over the limit is refused before it is read."""
    try:
        return read_regular(path, MAX_SPEC_BYTES)  # never waits on a FIFO
    except UnusableFileError as error:
        if error.too_large:
            raise _too_big(str(path)) from None
        raise ConfigError(
            f"{path}: not a regular file (a pipe, a device or a folder); give the path "
            "of a spec file, or - to read standard input"
        ) from None
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file; give the path of a .json, .jsonl or .txt spec"
        ) from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the spec ({error.__class__.__name__})") from None


def _read_at_most(stream: BinaryIO, source: str) -> bytes:
    """At most `MAX_SPEC_BYTES` from `stream` (a pipe or a device has no size to check first)."""
    data = stream.read(MAX_SPEC_BYTES + 1)
    if len(data) > MAX_SPEC_BYTES:
        raise _too_big(source)
    return data


def _too_big(source: str) -> ConfigError:
    return ConfigError(
        f"{source}: the spec is larger than {MAX_SPEC_BYTES // (1024 * 1024)} MB; "
        "split it into smaller jobs"
    )


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: the spec is not UTF-8 text; save it as UTF-8") from None


def _looks_like_json(text: str) -> bool:
    return text.lstrip("\ufeff").lstrip()[:1] in ("{", "[")


def _spec_from_text(text: str, fmt: SpecFormat, source: str, stem: str, base: Path) -> JobSpec:
    if fmt == "json":
        data = _json_spec(text, source)
    elif fmt == "jsonl":
        data = {"items": _jsonl_items(text, source)}
    else:
        data = {"items": _text_items(text, source)}
    data.setdefault("key", _slug(stem))
    data.setdefault("name", stem)
    return _resolve_references(parse_spec(data, source), base)


def _json_spec(text: str, source: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source}: line {error.lineno}: invalid JSON ({error.msg})") from None
    if isinstance(data, list):
        return {"items": data}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the spec must be a JSON object with an 'items' list")
    return data


def _jsonl_items(text: str, source: str) -> list[Any]:
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ConfigError(f"{source}: line {number}: invalid JSON ({error.msg})") from None
    return items


def _text_items(text: str, source: str) -> list[dict[str, str]]:
    prompts = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    if not prompts:
        raise ConfigError(f"{source}: no prompts found; write one prompt per line")
    return [{"id": f"item-{n:03d}", "prompt": p} for n, p in enumerate(prompts, start=1)]


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")
    return slug[:128] or "job"


def _resolve_references(spec: JobSpec, base: Path) -> JobSpec:
    """File references made absolute (relative to the spec file); item ids and URLs stay."""
    if not any(item.references for item in spec.items):
        return spec
    ids = {item.id for item in spec.items}
    items = []
    for index, item in enumerate(spec.items):
        resolved = []
        for ref in item.references:
            if ref in ids or is_url(ref):
                resolved.append(ref)
                continue
            ref_path = (base / ref).resolve()
            if not ref_path.is_file():
                raise ConfigError(
                    f"items[{index}].references: {ref!r} is neither an item id of this job nor "
                    "a file; give an item's id, an http(s) URL or a path relative to the spec "
                    "file"
                )
            resolved.append(str(ref_path))
        items.append(item.model_copy(update={"references": tuple(resolved)}))
    return spec.model_copy(update={"items": tuple(items)})

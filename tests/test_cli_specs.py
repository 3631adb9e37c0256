"""How `imagebatch run` reads a spec: only the formats it knows, and strict numbers.

Each case runs the real CLI (`python -m orchestrator --workspace <tmp>/ws run ...`) in `tmp_path`
with a bounded timeout. A refused spec exits 2 with one line on stderr, no traceback, and leaves
no workspace behind: nothing was created, and nothing was billed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.storage import ENV_VAR

TIMEOUT_S = 60
FAST = {"seed": 1, "latency_mean_s": 0.02, "latency_distribution": "fixed"}
ACCEPTED = ".json, .jsonl and .txt"

# --------------------------------------------------------------------- helpers


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m orchestrator --workspace ws --no-progress args...` in `cwd` to its end."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "--workspace", "ws", "--no-progress", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=_env(),
        cwd=cwd,
        check=False,
    )


def refused(result: subprocess.CompletedProcess[str], cwd: Path) -> str:
    """Assert exit 2, one error line, no traceback, no workspace; return the line."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("imagebatch: error: "), result.stderr
    assert result.stdout == ""
    assert not (cwd / "ws").exists(), "a refused spec must not create the workspace"
    return lines[0]


def spec_data(**extra: Any) -> dict[str, Any]:
    """A small, fast mock spec; `extra` sets or replaces top-level fields."""
    data: dict[str, Any] = {
        "key": "specs-1",
        "provider": "mock",
        "provider_options": dict(FAST),
        "defaults": {"size": "64x64"},
        "output": {"format": "png", "thumbnail_px": 32},
        "items": [{"id": "a", "prompt": "a red fox"}, {"id": "b", "prompt": "a blue whale"}],
    }
    data.update(extra)
    return data


def write(cwd: Path, name: str, data: Any) -> str:
    text = data if isinstance(data, str) else json.dumps(data, indent=2)
    (cwd / name).write_text(text, encoding="utf-8")
    return name


# ---------------------------------------------------------------------- formats


def test_a_yaml_spec_is_refused_naming_the_accepted_formats(tmp_path: Path) -> None:
    name = write(tmp_path, "spec.yaml", "key: k\nitems:\n  - id: a\n    prompt: a cat\n")
    line = refused(cli(tmp_path, "run", name), tmp_path)
    assert line.startswith("imagebatch: error: spec.yaml: ")
    assert ACCEPTED in line
    assert "--format" in line


def test_a_json_spec_saved_as_txt_is_refused_with_a_hint(tmp_path: Path) -> None:
    name = write(tmp_path, "spec.txt", spec_data())
    line = refused(cli(tmp_path, "run", name), tmp_path)
    assert "looks like JSON" in line
    assert "rename it to .json" in line
    assert "--format text" in line


def test_a_json_file_without_an_extension_is_refused(tmp_path: Path) -> None:
    name = write(tmp_path, "spec", spec_data())
    line = refused(cli(tmp_path, "run", name), tmp_path)
    assert line.startswith("imagebatch: error: spec: ")
    assert ACCEPTED in line


def test_standard_input_needs_a_format(tmp_path: Path) -> None:
    line = refused(cli(tmp_path, "run", "-", stdin=json.dumps(spec_data())), tmp_path)
    assert "--format json|jsonl|text" in line


def test_a_spec_on_standard_input_runs_with_format_json(tmp_path: Path) -> None:
    data = spec_data()
    del data["key"]
    result = cli(tmp_path, "run", "-", "--format", "json", "--json", stdin=json.dumps(data))
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    shown = json.loads(result.stdout)
    job = shown["job"]
    assert (job["key"], job["name"]) == ("stdin", "stdin")
    assert job["status"] == "completed"
    assert {item["id"]: item["prompt"] for item in shown["items"]} == {
        "a": "a red fox",
        "b": "a blue whale",
    }
    assert all(Path(item["raw"]).is_file() for item in shown["items"])


# ------------------------------------------------------------- strict numbers


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"limits": {"concurrency": "3"}}, "spec.json: limits.concurrency: concurrency must be"),
        ({"defaults": {"size": "64x64", "seed": True}}, "spec.json: defaults.seed: Input should"),
        ({"provider_options": {**FAST, "seed": True}}, "provider_options.seed: Input should"),
    ],
)
def test_loose_numbers_are_refused_naming_the_field(
    tmp_path: Path, extra: dict[str, Any], field: str
) -> None:
    name = write(tmp_path, "spec.json", spec_data(**extra))
    line = refused(cli(tmp_path, "run", name), tmp_path)
    assert field in line and ("a valid integer" in line or "a whole number" in line)

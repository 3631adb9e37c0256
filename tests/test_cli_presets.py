"""Prompt presets on the command line: `status` shows the prompt sent, an unknown preset is one
line (exit 2) and writes nothing, `$IMAGEBATCH_PRESETS` adds the user's own."""

from __future__ import annotations

import json
from pathlib import Path

from .cli_helpers import _env, cli, inproc, items_by_id, ok, one_line_error, status, write_spec

ITEMS = [
    {"id": "a", "prompt": "a fox"},
    {"id": "b", "prompt": "a crow", "preset": "none"},
]


def test_status_shows_the_prompt_sent(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    own = tmp_path / "mine.json"
    own.write_text(json.dumps({"neon": "{prompt} under neon light"}))
    spec = write_spec(tmp_path, items=ITEMS, defaults={"size": "64x64", "preset": "neon"})
    ok(cli(ws, "run", str(spec), "--no-progress", env=_env(IMAGEBATCH_PRESETS=str(own))))
    shown = items_by_id(status(ws))
    assert shown["a"]["prompt"] == "a fox"
    assert shown["a"]["final_prompt"] == "a fox under neon light"
    assert shown["b"]["final_prompt"] == "a crow"
    text = ok(inproc(ws, "status"))
    assert "sent: a fox under neon light" in text
    assert "sent: a crow" not in text  # only shown where it differs from the prompt


def test_an_unknown_preset_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path, items=ITEMS, defaults={"size": "64x64", "preset": "neon"})
    line = one_line_error(cli(ws, "run", str(spec)))
    assert "defaults.preset: no preset 'neon'; known: " in line
    assert "watercolor" in line and "IMAGEBATCH_PRESETS" in line
    assert not ws.exists()

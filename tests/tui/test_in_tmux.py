"""The app as a new user meets it, in a real terminal: tmux.

A person runs a batch with the CLI, opens `imagebatch tui` in the same folder, opens the job and
looks. This test does the same on its own tmux server (`tmux -L`, so it never touches anyone's
sessions): `tmux new -d` starts the app, `send-keys` types, `capture-pane` reads the screen. It
checks that the job is listed, that its screen shows a row per image, the progress bar at 6/6
and a half-cell preview (rows of `▀` in colour: tmux has no Sixel or Kitty graphics), that `p`
shows the prompt and that `q` quits cleanly. The screens it saw are left in the test's
temporary folder (`screen-*.txt`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.storage import ENV_VAR

COLUMNS, ROWS = 120, 36
WAIT_S = 30.0
PROMPTS = [
    "a lighthouse at dusk",
    "a paper boat on a wave",
    "a cat reading a map",
    "a whale under the moon",
    "a crab with a button",
    "a sleeping cat",
]
HALF_CELL = "▀"
COLOURED = re.compile(r"\x1b\[[0-9;]*(?:38|48);[25];")


class Terminal:
    """One tmux server and session, running a command in a folder."""

    def __init__(self, folder: Path, command: str) -> None:
        self.socket = f"imagebatch-test-{time.monotonic_ns()}"
        self.folder = folder
        self.shots = 0
        env = {"TERM": "xterm-256color", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
        self.tmux(
            "new-session",
            "-d",
            "-s",
            "tui",
            "-x",
            str(COLUMNS),
            "-y",
            str(ROWS),
            "-c",
            str(folder),
            command,
            env=env,
        )

    def tmux(self, *args: str, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env=env,
        )
        return done.stdout

    def screen(self, colours: bool = False) -> str:
        """What the pane shows now (with the escape sequences of its colours, if asked)."""
        text = self.tmux("capture-pane", "-p", *(["-e"] if colours else []), "-t", "tui")
        self.shots += 1
        (self.folder / f"screen-{self.shots:02d}.txt").write_text(text)
        return text

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "tui", *keys)

    def wait_for(self, check: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + WAIT_S
        while True:
            text = self.screen()
            if check(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"within {WAIT_S}s: {what}; the screen:\n{text}")
            time.sleep(0.2)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A person's project folder with a spec in it."""
    spec = {
        "key": "harbour",
        "name": "harbour stories",
        "provider": "mock",
        "provider_options": {"seed": 3, "latency_mean_s": 0.05, "latency_distribution": "fixed"},
        "defaults": {"size": "256x256"},
        "output": {"format": "png", "thumbnail_px": 64},
        "items": [{"id": f"page-{n}", "prompt": p} for n, p in enumerate(PROMPTS, 1)],
    }
    (tmp_path / "story.json").write_text(json.dumps(spec))
    return tmp_path


@pytest.fixture
def terminal(folder: Path) -> Iterator[Callable[[str], Terminal]]:
    opened: list[Terminal] = []

    def open_(command: str) -> Terminal:
        opened.append(Terminal(folder, command))
        return opened[-1]

    yield open_
    for term in opened:
        term.close()


def test_a_new_user_runs_a_batch_then_looks_at_it_in_the_app(
    folder: Path, terminal: Callable[[str], Terminal]
) -> None:
    assert shutil.which("tmux"), "tmux is needed for this test (apt-get install tmux)"
    env = {k: v for k, v in __import__("os").environ.items() if k != ENV_VAR}
    run = subprocess.run(
        [sys.executable, "-m", "orchestrator", "--no-progress", "run", "story.json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr

    term = terminal(f"{sys.executable} -m orchestrator tui; echo tui-exited-$?; sleep 600")
    listed = term.wait_for(lambda s: "harbour stories" in s, "the job is listed")
    assert "completed" in listed and "6/6" in listed and ".imagebatch" in listed

    term.keys("Enter")
    job = term.wait_for(lambda s: "images: all (6 of 6)" in s, "the job screen opens")
    # table rows, not the events pane's "hh:mm:ss page-1 completed" lines
    rows = [line for line in job.splitlines() if re.search(r"│ page-\d\s+completed", line)]
    assert len(rows) == 6, job
    assert re.search(r"━{10,}.*100% 6/6 · completed", job), "the progress bar, full"
    job = term.wait_for(lambda s: s.count(HALF_CELL) > 200, "the preview draws page-1")
    assert "page-1 · 256x256" in job
    coloured = [line for line in term.screen(colours=True).splitlines() if HALF_CELL in line]
    assert len(coloured) >= 8 and all(COLOURED.search(line) for line in coloured)

    term.keys("p")
    prompt = term.wait_for(lambda s: "Final prompt sent" in s, "the prompt shows")
    assert PROMPTS[0] in prompt and HALF_CELL not in prompt

    term.keys("q")
    term.wait_for(lambda s: "tui-exited-0" in s, "q quits, exit code 0")

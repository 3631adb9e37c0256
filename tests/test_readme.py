"""The README runs as shown: every `imagebatch` command in its shell blocks, every JSON spec and
the Python example, against a local fake API server instead of the real ones.

Shell lines are read with `shlex`. `export VAR=value` sets a variable, `VAR=value imagebatch ...`
runs a command with variables, `imagebatch fake-server ...` is started in the background on a free
port (the README's port is replaced by it). Set-up lines (venv, pip, pytest, linters) are the
ones this suite cannot run from inside itself; any other line fails the test, so a new command in
the README is covered the day it is written.
"""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cli_helpers import TIMEOUT_S, _env

README = Path(__file__).resolve().parent.parent / "README.md"
README_PORT = "8089"
SET_UP = ("python3", ".", "pip", "pytest", "ruff", "mypy", ".ci/run", "python", "jupyter", "sudo")
"""Lines that set up or test the project; the README's first screen is checked by CI itself."""


def blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Shell:
    """Runs the README's shell lines in a folder holding its spec as `story.json`."""

    def __init__(self, cwd: Path, port: int) -> None:
        self.cwd = cwd
        self.port = str(port)
        self.env = _env(IMAGEBATCH_WORKSPACE=str(cwd / "ws"))
        for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
            self.env.pop(name, None)
        self.servers: list[subprocess.Popen[str]] = []
        self.ran: list[str] = []

    def run_line(self, line: str) -> None:
        words = shlex.split(line.replace(README_PORT, self.port), comments=True)
        if not words or words[0] in SET_UP:
            return
        if words[0] == "export":
            self.env.update(_assignments(words[1:]))
            return
        env = dict(self.env)
        while words and re.match(r"^[A-Z_]+=", words[0]):
            env.update(_assignments([words.pop(0)]))
        assert words[0] == "imagebatch", f"README line this test cannot run: {line!r}"
        command = [sys.executable, "-m", "orchestrator", *words[1:]]
        if words[1] == "fake-server":
            self.start_server(command)
            return
        result = subprocess.run(
            command, cwd=self.cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
        )
        assert result.returncode == 0, (line, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        self.ran.append(" ".join(words[:3]))

    def start_server(self, command: list[str]) -> None:
        server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=self.env)
        self.servers.append(server)
        assert server.stdout is not None
        assert "fake image API on" in server.stdout.readline()

    def close(self) -> None:
        for server in self.servers:
            server.terminate()
            server.wait(timeout=TIMEOUT_S)
            if server.stdout is not None:
                server.stdout.close()


def _assignments(words: list[str]) -> dict[str, str]:
    return dict(word.split("=", 1) for word in words)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    (tmp_path / "story.json").write_text(blocks("json")[0], encoding="utf-8")
    runner = Shell(tmp_path, free_port())
    try:
        yield runner
    finally:
        runner.close()


def test_the_readme_has_what_a_newcomer_needs_first() -> None:
    first = blocks("bash")[0]
    assert "python3 -m venv" in first
    assert "pip install -e . && imagebatch demo" in first
    assert "pip install -e '.[test]' && pytest" in first


@pytest.mark.timeout(600)  # some forty commands, each a fresh interpreter: slow on busy cores
def test_every_shell_command_in_the_readme_runs_as_shown(shell: Shell) -> None:
    # The real APIs are out of reach: the keys the README exports are placeholders, and the
    # providers' base URLs point at the README's own fake server.
    shell.start_server(
        [sys.executable, "-m", "orchestrator", "fake-server", "--port", shell.port, "--seed", "3"]
    )
    shell.env["OPENAI_BASE_URL"] = f"http://127.0.0.1:{shell.port}/v1"
    shell.env["GEMINI_BASE_URL"] = f"http://127.0.0.1:{shell.port}"
    for block in blocks("bash"):
        if "fake-server" in block:
            shell.close()  # the README starts its own on the same port
            shell.servers.clear()
        for line in block.splitlines():
            for command in line.split(" && "):
                shell.run_line(command)
    assert "imagebatch demo" in shell.ran
    assert sum(ran.startswith("imagebatch run story.json") for ran in shell.ran) >= 4


def test_every_json_spec_in_the_readme_runs_on_its_provider(shell: Shell) -> None:
    shell.start_server(
        [sys.executable, "-m", "orchestrator", "fake-server", "--port", shell.port, "--seed", "3"]
    )
    env = f"OPENAI_BASE_URL=http://127.0.0.1:{shell.port}/v1 OPENAI_API_KEY=k "
    env += f"GEMINI_BASE_URL=http://127.0.0.1:{shell.port} GEMINI_API_KEY=k"
    specs = blocks("json")
    assert len(specs) >= 2
    for number, block in enumerate(specs):
        (shell.cwd / f"spec-{number}.json").write_text(block, encoding="utf-8")
        shell.run_line(f"{env} imagebatch run spec-{number}.json")
    assert len(shell.ran) == len(specs)


def test_the_python_example_in_the_readme_runs(shell: Shell) -> None:
    (example,) = blocks("python")
    result = subprocess.run(
        [sys.executable, "-c", example],
        cwd=shell.cwd,
        env=shell.env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all("completed" in line for line in lines), result.stdout


def test_the_notebook_example_in_the_readme_runs(shell: Shell) -> None:
    """The `py` block is a notebook cell (top-level await): run as the body of a coroutine."""
    (cell,) = blocks("py")
    body = "".join(f"    {line}\n" for line in cell.splitlines())
    program = f"import asyncio\n\nasync def cell():\n{body}\nasyncio.run(cell())\n"
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=shell.cwd,
        env=shell.env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("image-")]
    assert len(lines) == 2 and all(" completed " in line for line in lines), result.stdout

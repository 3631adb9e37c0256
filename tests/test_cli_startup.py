"""Start-up and exit of the `imagebatch` program (issue 11).

Commands that send no request import no provider SDK; `run` imports the SDK in a thread that
overlaps the spec's checks and the journal's opening; the program leaves without tearing the
interpreter down once the command is done. Every check is on structure (which module is loaded,
in which thread, before what), never on how long something took: the machine is shared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .cli_helpers import TIMEOUT_S, _env, status, write_spec
from .conftest import ServeFakeApi, fake_api_env

SDKS = ("openai", "google.genai", "aiohttp", "httpx")
"""The providers' clients: OpenAI's SDK, Google's, and aiohttp (the Gemini provider's)."""

LOADED = """
import json, sys
from orchestrator.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "loaded": [m for m in SDKS if m in sys.modules]}))
""".replace("SDKS", repr(SDKS))

TIMELINE = """
import json, sys, threading
seen = {}

def hook(event, args):
    if event == "import" and args[0].partition(".")[0] == "openai" and "sdk" not in seen:
        seen["sdk"] = {"thread": threading.current_thread().name}
    elif event == "import" and args[0].startswith("httpcore") and "transport" not in seen:
        seen["transport"] = {"thread": threading.current_thread().name}
    elif event == "sqlite3.connect" and "journal" not in seen:
        importing = any(t.name == "import openai" for t in threading.enumerate())
        seen["journal"] = {"sdk_importing": importing}

sys.addaudithook(hook)
from orchestrator.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, **seen}))
"""

LEAVE = """
import atexit, sys
atexit.register(lambda: print("interpreter torn down", flush=True))
from orchestrator.cli.leave import entry
entry(sys.argv[1:])
"""


def _python(script: str, *args: str, env: dict[str, str] | None = None) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env or _env(),
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _openai_spec(tmp_path: Path, provider: str = "openai") -> Path:
    return write_spec(
        tmp_path,
        f"{provider}.json",
        provider=provider,
        provider_options={},
        defaults={"size": "1024x1024"},
    )


@pytest.mark.parametrize(
    "command",
    [["--help"], ["status"], ["list"], ["status", "no-such-job"], ["estimate", "openai"]],
    ids=["help", "status", "list", "status-job", "estimate"],
)
def test_commands_that_send_nothing_import_no_provider_sdk(
    tmp_path: Path, command: list[str]
) -> None:
    ws = tmp_path / "ws"
    (ws / "journal").mkdir(parents=True)  # an empty workspace
    if command[0] == "estimate":
        command = ["estimate", str(_openai_spec(tmp_path))]
    result = _python(LOADED, "--workspace", str(ws), *command)
    assert result["loaded"] == [], result
    assert result["code"] in (0, 2, 4), result  # help, listed, estimated, or job not found


def test_estimate_of_a_gemini_spec_loads_no_http_client(tmp_path: Path) -> None:
    spec = _openai_spec(tmp_path, "gemini")
    result = _python(LOADED, "estimate", str(spec))
    assert result == {"code": 0, "loaded": []}


def test_run_imports_the_sdk_in_a_thread_while_the_journal_opens(
    tmp_path: Path, serve_fake_api: ServeFakeApi
) -> None:
    server = serve_fake_api(seed=3)
    ws, spec = tmp_path / "ws", _openai_spec(tmp_path)
    env = _env(**fake_api_env(server))
    args = ["--workspace", str(ws), "run", "--no-progress", str(spec)]
    result = _python(TIMELINE, *args, env=env)
    assert result["code"] == 0, result
    assert result["sdk"]["thread"] == "import openai", result  # not on the main thread
    assert result["journal"]["sdk_importing"], result  # begun before the journal, still going
    # the HTTP client is built in that thread too: its transport's imports are off the loop
    assert result["transport"]["thread"] == "import openai", result
    assert server.stats.requests == 3
    assert status(ws)["job"]["status"] == "completed"


def test_the_program_leaves_without_tearing_the_interpreter_down(
    tmp_path: Path, serve_fake_api: ServeFakeApi
) -> None:
    server = serve_fake_api(seed=4)
    ws, spec = tmp_path / "ws", _openai_spec(tmp_path)
    env = _env(**fake_api_env(server))
    done = subprocess.run(
        [sys.executable, "-c", LEAVE, "--workspace", str(ws), "run", "--json", str(spec)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "interpreter torn down" not in done.stdout  # atexit never ran: no teardown
    printed = json.loads(done.stdout)  # the whole report was flushed before leaving
    assert printed["job"]["status"] == "completed"
    again = status(ws, printed["job"]["id"])  # the journal was closed cleanly
    assert [item["status"] for item in again["items"]] == ["completed"] * 3


def test_usage_errors_still_leave_the_ordinary_way(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LEAVE, "--no-such-flag"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=_env(),
        check=False,
    )
    assert done.returncode == 2
    assert "interpreter torn down" in done.stdout


def test_help_loads_no_pydantic_and_no_fake_server() -> None:
    """`imagebatch --help` builds every command's parser, the fake server's flags included;
    none of it needs pydantic or the server, whose import alone took half a second."""
    script = LOADED.replace(
        repr(SDKS), repr(("pydantic", "orchestrator.testing.fakeserver.options"))
    )
    result = _python(script, "--help")
    assert result["loaded"] == [], result

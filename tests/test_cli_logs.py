"""`-v` and `--log-file`: a failing job against the fake API logs one timed line per attempt
(job, item, attempt, outcome, time taken) and per job event, and never the key."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .cli_helpers import _env, cli, inproc, ok, one_line_error, write_spec
from .conftest import ServeFakeApi, fake_api_env

KEY = "sk-test-CANARY-do-not-log-4242"
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} (INFO|WARNING|DEBUG) job (\S+) (.*)$")
ATTEMPT = re.compile(
    r"^item (\S+) attempt (\d) (error unavailable|failed unavailable) in \d+\.\d\ds"
)


def _spec(tmp_path: Path) -> Path:
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "key": "logs",
                "provider": "openai",
                "model": "gpt-image-1",
                "defaults": {"size": "1024x1024", "quality": "low"},
                "limits": {"concurrency": 2, "timeout_s": 30, "max_attempts": 3},
                "items": [{"id": "p1", "prompt": "a fox"}, {"id": "p2", "prompt": "a crow"}],
            }
        ),
        encoding="utf-8",
    )
    return spec


def test_a_failing_job_logs_one_line_per_attempt_and_no_key(
    tmp_path: Path, serve_fake_api: ServeFakeApi
) -> None:
    server = serve_fake_api(rate_500=1.0)
    ws, log = tmp_path / "ws", tmp_path / "run.log"
    env = _env(**fake_api_env(server, key=KEY))
    result = cli(ws, "run", str(_spec(tmp_path)), "-v", "--log-file", str(log), env=env)
    assert result.returncode == 4, result.stderr
    lines = log.read_text(encoding="utf-8").splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines  # every line timed and naming its job
    rest = [match.group(3) for match in parsed if match]
    attempts = sorted(
        (found.group(1), int(found.group(2)), found.group(3))
        for found in map(ATTEMPT.match, rest)
        if found
    )
    assert attempts == [
        (item, n, "error unavailable" if n < 3 else "failed unavailable")
        for item in ("p1", "p2")
        for n in (1, 2, 3)
    ]
    assert sum(" attempt " in line for line in lines) == 6  # one line per attempt, no more
    assert rest[0] == "started" and rest[-1].startswith("finished failed in ")
    assert KEY not in log.read_text(encoding="utf-8")
    assert KEY not in result.stderr and KEY not in result.stdout
    assert all(line in result.stderr for line in lines)  # -v: the same lines on stderr


def test_without_flags_nothing_is_logged(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    result = cli(ws, "run", str(write_spec(tmp_path, items=2)), "--no-progress")
    ok(result)
    assert " INFO job " not in result.stderr


def test_a_bad_log_file_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = str(write_spec(tmp_path, items=1))
    missing = tmp_path / "nowhere" / "run.log"
    line = one_line_error(inproc(ws, "run", spec, "--log-file", str(missing)))
    assert "--log-file" in line and "does not exist" in line
    assert "is a folder" in one_line_error(inproc(ws, "run", spec, "--log-file", str(tmp_path)))
    assert not ws.exists()
    log = tmp_path / "bad-spec.log"
    one_line_error(inproc(ws, "run", str(tmp_path / "no-such.json"), "--log-file", str(log)))
    assert not log.exists() and not ws.exists()  # bad input: no log file either


def test_a_log_file_that_cannot_be_written_is_said_once_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    """/dev/full answers every write with ENOSPC, as a log file's full disk does. The run
    completes with one warning line. Before, logging printed a traceback for every line and
    the command ended with one more, exit 1."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    ws = tmp_path / "ws"
    spec = str(write_spec(tmp_path, items=4))
    result = cli(ws, "--log-file", "/dev/full", "-v", "run", spec, "--no-progress")
    ok(result)
    warning = (
        "imagebatch: warning: the log file /dev/full cannot be written (No space left on "
        "device); no more lines go to it"
    )
    assert result.stderr.count(warning) == 1, result.stderr
    assert "Traceback" not in result.stderr and "Logging error" not in result.stderr
    assert " INFO job " in result.stderr  # -v's lines on stderr go on
    assert "4 completed" in result.stdout

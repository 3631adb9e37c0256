"""The `imagebatch` command line, run as real processes against a real workspace on disk.

Commands that write run as `python -m orchestrator --workspace <tmp>/ws ...` subprocesses with a
bounded timeout. The many quick bad-input cases and the read-only `status`/`list` calls go
through the same `orchestrator.cli.main` in this process (`inproc`), to keep the suite fast.
Waits for a condition (a running item, a finished process) poll the journal with a bounded
deadline; nothing here asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main as cli_main
from orchestrator.locks import KeyLocks
from orchestrator.providers.base import GenerateRequest, ProviderConfig
from orchestrator.providers.mock import MockProvider
from orchestrator.storage import ENV_VAR
from orchestrator.testing.clock import FakeClock

from .cli_helpers import (
    TIMEOUT_S,
    _env,
    cli,
    finish,
    inproc,
    item_records,
    items_by_id,
    journal_at,
    ok,
    one_line_error,
    only_job_id,
    running_items,
    start_cli,
    status,
    stopped_at_end,
    wait_for,
    write_spec,
)

# ------------------------------------------------------------------ bad input

BAD_SPECS: dict[str, tuple[str, Any, str]] = {
    # case: (file name, content (str: raw text; else JSON of the whole spec), text in the error)
    "invalid-json": ("spec.json", '{"key": "a", "items": [}', "invalid JSON"),
    "unknown-field": (
        "spec.json",
        {"key": "a", "items": [{"id": "a", "prompt": "x"}], "limits": {"concurency": 2}},
        "limits.concurency",
    ),
    "id-dotdot": ("spec.json", {"key": "a", "items": [{"id": "../x", "prompt": "x"}]}, "id"),
    "id-too-long": ("spec.json", {"key": "a", "items": [{"id": "x" * 65, "prompt": "x"}]}, "id"),
    "id-empty": ("spec.json", {"key": "a", "items": [{"id": "", "prompt": "x"}]}, "id"),
    "duplicate-ids": (
        "spec.json",
        {"key": "a", "items": [{"id": "a", "prompt": "x"}, {"id": "a", "prompt": "y"}]},
        "twice",
    ),
    "no-items": ("spec.json", {"key": "a", "items": []}, "items"),
    "no-prompts": ("spec.txt", "\n# nothing here\n", "no prompts"),
    "bad-limits": (
        "spec.json",
        {"key": "a", "items": [{"id": "a", "prompt": "x"}], "limits": {"concurrency": 0}},
        "limits.concurrency",
    ),
    "unknown-provider": (
        "spec.json",
        {"key": "a", "provider": "nope", "items": [{"id": "a", "prompt": "x"}]},
        "nope",
    ),
    "bad-provider-option": (
        "spec.json",
        {"key": "a", "provider_options": {"rate_429": 2}, "items": [{"id": "a", "prompt": "x"}]},
        "rate_429",
    ),
    "unknown-provider-option": (
        "spec.json",
        {"key": "a", "provider_options": {"latency": 2}, "items": [{"id": "a", "prompt": "x"}]},
        "latency",
    ),
    "size-over-mock-max": (
        "spec.json",
        {"key": "a", "defaults": {"size": "4096x4096"}, "items": [{"id": "a", "prompt": "x"}]},
        "4096x4096",
    ),
    "webhook-scheme": (
        "spec.json",
        {
            "key": "a",
            "webhook": {"url": "ftp://x.invalid", "secret_env": "HOOK_SECRET"},
            "items": [{"id": "a", "prompt": "x"}],
        },
        "webhook.url: must be an http:// or https:// URL",
    ),
    "webhook-event": (
        "spec.json",
        {
            "key": "a",
            "webhook": {
                "url": "https://x.invalid",
                "secret_env": "HOOK_SECRET",
                "events": ["item.done"],
            },
            "items": [{"id": "a", "prompt": "x"}],
        },
        "webhook.events: unknown event 'item.done'",
    ),
    "webhook-secret-unset": (
        "spec.json",
        {
            "key": "a",
            "webhook": {"url": "https://x.invalid", "secret_env": "IMAGEBATCH_TEST_NO_SUCH_VAR"},
            "items": [{"id": "a", "prompt": "x"}],
        },
        "webhook.secret_env: $IMAGEBATCH_TEST_NO_SUCH_VAR is not set",
    ),
    "budget": (
        "spec.json",
        {"key": "a", "limits": {"budget_usd": 0}, "items": [{"id": "a", "prompt": "x"}]},
        "limits.budget_usd",
    ),
    "consistency": (
        "spec.json",
        {"key": "a", "consistency": "first_image", "items": [{"id": "a", "prompt": "x"}]},
        "consistency: Input should be 'none' or 'first-as-reference'",
    ),
    "reference": (
        "spec.json",
        {"key": "a", "items": [{"id": "a", "prompt": "x", "references": ["hero"]}]},
        "items[0].references: 'hero' is neither an item id of this job nor a file",
    ),
    "reference circle": (
        "spec.json",
        {
            "key": "a",
            "items": [
                {"id": "a", "prompt": "x", "references": ["b"]},
                {"id": "b", "prompt": "y", "references": ["a"]},
            ],
        },
        "items[0].references: the references go round in a circle (a -> b -> a)",
    ),
    "anchor": (
        "spec.json",
        {
            "key": "a",
            "consistency": "first-as-reference",
            "anchor": "nobody",
            "items": [{"id": "a", "prompt": "x"}],
        },
        "anchor: 'nobody' is not an item id of this job",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_is_one_line_and_writes_nothing(tmp_path: Path, case: str) -> None:
    name, content, expected = BAD_SPECS[case]
    spec = tmp_path / name
    spec.write_text(content if isinstance(content, str) else json.dumps(content))
    ws = tmp_path / "ws"
    for command in ("run", "create"):
        line = one_line_error(inproc(ws, command, str(spec)))
        assert expected in line
        assert not ws.exists(), "bad input must not even create the workspace"


def test_bad_input_in_a_real_process(tmp_path: Path) -> None:
    """A sample of the cases above through `python -m orchestrator`: no traceback, one line."""
    ws = tmp_path / "ws"
    line = one_line_error(cli(ws, "run", str(tmp_path / "missing.json")))
    assert "missing.json" in line
    assert "no such file" in line
    _, content, _ = BAD_SPECS["unknown-field"]
    (tmp_path / "typo.json").write_text(json.dumps(content))
    assert "limits.concurency" in one_line_error(cli(ws, "create", str(tmp_path / "typo.json")))
    spec = write_spec(tmp_path)
    assert "limits.concurrency" in one_line_error(cli(ws, "run", str(spec), "--concurrency", "0"))
    assert not ws.exists()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--concurrency", "0"], "limits.concurrency"),
        (["--concurrency", "auto", "--max-concurrency", "65"], "limits.max_concurrency"),
        (["--concurrency", "3", "--max-concurrency", "8"], "max_concurrency goes only with"),
        (["--max-concurrency", "8"], "max_concurrency goes only with"),
        (["--max-attempts", "0"], "limits.max_attempts"),
        (["--max-rate-limited", "0"], "limits.max_rate_limited"),
        (["--timeout", "-1"], "limits.timeout_s"),
        (["--rate", "0"], "limits.rate_per_minute"),
        (["--provider", "nope"], "nope"),
        (["--key", "has space"], "key"),
    ],
)
def test_bad_override_is_one_line_and_writes_nothing(
    tmp_path: Path, flags: list[str], expected: str
) -> None:
    ws = tmp_path / "ws"
    line = one_line_error(inproc(ws, "run", str(write_spec(tmp_path)), *flags))
    assert expected in line
    assert not ws.exists()


def test_status_shows_an_adaptive_jobs_concurrency_limit(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path, items=6)
    ok(inproc(ws, "run", str(spec), "--concurrency", "auto", "--max-concurrency", "8"))
    job = status(ws)["job"]
    assert job["concurrency_auto"] is True and job["max_concurrency"] == 8
    assert isinstance(job["concurrency"], int) and 1 <= job["concurrency"] <= 8
    text = ok(inproc(ws, "status"))
    assert f"concurrency {job['concurrency']} (auto, at most 8) when it last ran" in text
    fixed = write_spec(tmp_path, "fixed.json", items=2, key="fixed")
    ok(inproc(ws, "run", str(fixed), "--concurrency", "3"))
    job = status(ws)["job"]
    assert (job["concurrency"], job["concurrency_auto"], job["max_concurrency"]) == (3, False, 3)
    assert "concurrency" not in ok(inproc(ws, "status"))


def test_bad_demo_override_writes_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert "limits.concurrency" in one_line_error(inproc(ws, "demo", "--concurrency", "0"))
    assert not ws.exists()


@pytest.mark.parametrize(
    "args",
    [["run"], ["run", "s.json", "--concurrency", "many"], ["frobnicate"], ["status", "--jsn"]],
)
def test_usage_mistakes_are_one_line(tmp_path: Path, args: list[str]) -> None:
    ws = tmp_path / "ws"
    result = inproc(ws, *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "error" in lines[0]
    assert not ws.exists()


@pytest.mark.parametrize(
    ("args", "help_of"),
    [
        (["retry", "job-1", "page-2"], "imagebatch retry --help"),  # ids go in --items
        (["demo", "--items", "3"], "imagebatch demo --help"),
        (["list", "--all"], "imagebatch list --help"),
    ],
)
def test_an_argument_a_command_does_not_take_points_to_that_command_s_help(
    tmp_path: Path, args: list[str], help_of: str
) -> None:
    ws = tmp_path / "ws"
    result = inproc(ws, *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "unrecognized arguments" in result.stderr
    assert result.stderr.rstrip().endswith(f"(see {help_of})"), result.stderr
    assert not ws.exists()


def test_the_help_names_the_commands_within_80_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = inproc(tmp_path / "ws", "--help")
    assert result.returncode == 0
    usage = result.stdout.split("\n\n")[0]
    assert usage.rstrip().endswith("COMMAND ...")  # not every command in braces
    assert max(len(line) for line in usage.splitlines()) <= 80
    for command in ("demo", "run", "status", "watch", "tui"):
        assert f"\n    {command} " in result.stdout


def test_unknown_job_in_a_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    job = ok(cli(ws, "create", str(write_spec(tmp_path)))).strip()
    with journal_at(ws) as journal:
        seq = journal.last_seq()
    for command in ("start", "retry"):  # in real processes
        line = one_line_error(cli(ws, command, "nope-1"))
        assert "nope-1" in line, command
    for command in ("status", "cancel", "resume"):
        line = one_line_error(inproc(ws, command, "nope-1"))
        assert "nope-1" in line, command
    with journal_at(ws) as journal:
        assert journal.last_seq() == seq, "a refused command writes nothing"
        assert [j.id for j in journal.jobs()] == [job]
        assert journal.job(job).status == "pending"


@pytest.mark.parametrize(
    "args",
    [["start", "nope-1"], ["status"], ["retry", "nope-1"], ["cancel", "nope-1"], ["resume"]],
)
def test_commands_on_a_missing_workspace_create_nothing(tmp_path: Path, args: list[str]) -> None:
    ws = tmp_path / "ws"
    one_line_error(inproc(ws, *args))
    assert not ws.exists()


def test_list_of_a_missing_workspace_is_empty_and_creates_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert json.loads(ok(inproc(ws, "list", "--json"))) == []
    assert "no jobs" in ok(inproc(ws, "list"))
    assert not ws.exists()


# ------------------------------------------------------------- create / start


def test_create_records_a_job_and_runs_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    result = cli(ws, "create", str(write_spec(tmp_path, items=4)))
    job = ok(result).strip()
    assert len(ok(result).splitlines()) == 1, "create prints the job id alone"
    assert job.startswith("story-1-")
    data = status(ws, job)
    assert data["job"]["id"] == job
    assert data["job"]["status"] == "pending"
    assert data["job"]["counts"]["pending"] == 4
    assert data["job"]["counts"]["completed"] == 0
    assert [i["status"] for i in data["items"]] == ["pending"] * 4
    assert all(i["attempts"] == 0 and i["image"] is None for i in data["items"])
    assert not (ws / "images").exists() or not any((ws / "images").rglob("*.png"))
    listed = json.loads(ok(inproc(ws, "list", "--json")))
    assert [(j["id"], j["status"]) for j in listed] == [(job, "pending")]

    start = cli(ws, "start", job, "--json")
    result_json = json.loads(ok(start))
    assert result_json["job"]["status"] == "completed"
    final = status(ws, job)
    assert final["job"]["status"] == "completed"
    assert final["job"]["counts"]["completed"] == 4
    for item in final["items"]:
        assert item["status"] == "completed"
        assert item["error"] is None
        assert Path(item["image"]).is_file()
        assert Path(item["raw"]).is_file()
        assert Path(item["thumbnail"]).is_file()


def test_create_json_and_overrides(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path, limits={"concurrency": 2, "timeout_s": 20, "max_attempts": 2})
    out = ok(cli(ws, "create", str(spec), "--json", "--key", "flag-key", "--name", "From flag"))
    job = json.loads(out)
    assert job["key"] == "flag-key"
    assert job["name"] == "From flag"
    assert job["status"] == "pending"
    assert job["id"].startswith("flag-key-")


def test_max_rate_limited_on_the_command_line_fails_an_item_at_its_first_429(
    tmp_path: Path,
) -> None:
    """For a user who would rather see a 429 than wait it out (the spec's default is 20)."""
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path, items=1, options={"rate_429": 1.0, "retry_after_s": 0.05})
    done = cli(ws, "run", str(spec), "--json", "--max-rate-limited", "1")
    assert done.returncode == 4, done.stderr  # failed
    [item] = json.loads(done.stdout)["items"]
    assert item["status"] == "failed" and item["attempts"] == 1, item
    assert item["error"]["kind"] == "rate_limited", item


def test_start_and_retry_of_a_finished_job_write_nothing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    data = json.loads(ok(cli(ws, "run", str(write_spec(tmp_path, items=2)), "--json")))
    job = data["job"]["id"]
    with journal_at(ws) as journal:
        seq = journal.last_seq()
    # starting a finished job is an error (nothing to start), not a silent reprint
    line = one_line_error(cli(ws, "start", job, "--json"))
    assert "has finished (completed)" in line and "retry" in line
    # --json output stays machine-readable when there is nothing to do
    retried = json.loads(ok(cli(ws, "retry", job, "--json")))
    assert retried["job"]["id"] == job
    assert retried["job"]["status"] == "completed"
    with journal_at(ws) as journal:
        assert journal.last_seq() == seq


def test_cancel_json(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    job = ok(cli(ws, "create", str(write_spec(tmp_path)))).strip()
    data = json.loads(ok(cli(ws, "cancel", job, "--json")))
    assert data["job"]["id"] == job
    assert data["job"]["status"] == "cancelled"
    assert data["job"]["counts"]["cancelled"] == 3


def _job_ids(document: Any) -> set[str]:
    """Job ids in a `--json` answer about several jobs: a list, or an object with "jobs"."""
    runs = document["jobs"] if isinstance(document, dict) else document
    return {run["job"]["id"] for run in runs}


def _interrupted_job(tmp_path: Path, ws: Path, name: str, key: str) -> str:
    """A job that ran until SIGTERM stopped it: started, unfinished, resumable."""
    spec = write_spec(
        tmp_path,
        name,
        key=key,
        options={"latency_mean_s": 1.0, "latency_distribution": "fixed"},
        limits={"concurrency": 1, "timeout_s": 30, "max_attempts": 2},
    )
    log = tmp_path / name
    with stopped_at_end(start_cli(ws, "run", str(spec), log=log)) as proc:
        job: str = wait_for("the job to be recorded", lambda: only_job_id(ws), proc)
        wait_for("a running item", lambda: running_items(ws, job), proc)
        proc.send_signal(signal.SIGTERM)
        code, _, err = finish(proc, log)
    assert code == 143, err
    assert f"imagebatch resume {job}" in err and "Traceback" not in err
    return job


def test_resume_without_a_job_runs_every_interrupted_one(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    started = _interrupted_job(tmp_path, ws, "a.json", "key-a")
    created = ok(cli(ws, "create", str(write_spec(tmp_path, "b.json", key="key-b")))).strip()
    result = cli(ws, "resume", "--json")  # no job named: every interrupted one
    out = ok(result)
    assert status(ws, started)["job"]["status"] == "completed"
    # a job that was only created is not started by `resume`; it says how to start it
    assert status(ws, created)["job"]["status"] == "pending"
    assert f"imagebatch start {created}" in result.stderr
    assert _job_ids(json.loads(out)) == {started}  # several runs would still be one document
    assert "nothing to resume" in ok(cli(ws, "resume"))
    assert _job_ids(json.loads(ok(inproc(ws, "resume", "--json")))) == set()
    assert json.loads(ok(cli(ws, "start", created, "--json")))["job"]["status"] == "completed"


# ------------------------------------------------------------------ workspace


def test_workspace_from_the_environment(tmp_path: Path) -> None:
    env_ws = tmp_path / "from-env"
    here = tmp_path / "cwd"
    here.mkdir()
    spec = write_spec(tmp_path)
    job = ok(cli(None, "create", str(spec), env=_env(**{ENV_VAR: str(env_ws)}), cwd=here)).strip()
    assert (env_ws / "journal").is_dir()
    assert not (here / ".imagebatch").exists()
    assert status(env_ws, job)["job"]["id"] == job
    # --workspace wins over the environment
    flag_ws = tmp_path / "from-flag"
    ok(cli(flag_ws, "create", str(spec), "--key", "k2", env=_env(**{ENV_VAR: str(env_ws)})))
    assert (flag_ws / "journal").is_dir()


def test_default_workspace_is_dot_imagebatch(tmp_path: Path) -> None:
    here = tmp_path / "cwd"
    here.mkdir()
    job = ok(cli(None, "create", str(write_spec(tmp_path)), cwd=here)).strip()
    assert (here / ".imagebatch" / "journal").is_dir()
    listed = json.loads(ok(cli(None, "list", "--json", cwd=here)))
    assert [j["id"] for j in listed] == [job]


def test_console_script_runs_the_same_cli(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("imagebatch")
    # The README's first command is `imagebatch demo`: the script must be installed.
    assert script.exists(), "pip install -e . did not install the imagebatch console script"
    result = subprocess.run(
        [str(script), "--workspace", str(tmp_path / "ws"), "list", "--json"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


# ---------------------------------------------------------------- key conflict


def test_key_conflict_while_the_first_job_is_pending(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path)
    first = ok(cli(ws, "create", str(spec))).strip()

    line = one_line_error(cli(ws, "create", str(spec)), code=5)
    assert first in line
    line = one_line_error(cli(ws, "run", str(spec)), code=5)
    assert first in line
    assert [j["id"] for j in json.loads(ok(inproc(ws, "list", "--json")))] == [first]

    ok(cli(ws, "create", str(spec), "--key", "another-key"))  # another key is free

    out = ok(cli(ws, "cancel", first))
    assert first in out
    cancelled = status(ws, first)
    assert cancelled["job"]["status"] == "cancelled"
    assert {i["status"] for i in cancelled["items"]} == {"cancelled"}

    second = ok(cli(ws, "create", str(spec))).strip()
    assert second != first
    assert status(ws, second)["job"]["status"] == "pending"


# ------------------------------------------------------- partial, failed, retry

REJECT_ITEMS = [
    {"id": "cat", "prompt": "a cat on a mat"},
    {"id": "dragon-1", "prompt": "a red dragon"},
    {"id": "dog", "prompt": "a dog in fog"},
    {"id": "dragon-2", "prompt": "a green dragon"},
]


def test_partial_run_exits_3_and_names_the_rejected_items(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path, items=REJECT_ITEMS, options={"reject_pattern": "dragon"})
    result = cli(ws, "run", str(spec))
    out = ok(result, code=3)
    assert "partial" in out
    # failures are grouped by reason, naming the items
    rejected = [line for line in out.splitlines() if "content_rejected" in line]
    assert len(rejected) == 1 and "2 (dragon-1, dragon-2)" in rejected[0], out
    assert "cat" not in out and "dog" not in out

    data = status(ws)
    job = data["job"]["id"]
    assert data["job"]["status"] == "partial"
    assert data["job"]["counts"]["completed"] == 2
    assert data["job"]["counts"]["failed"] == 2
    items = items_by_id(data)
    for item_id in ("dragon-1", "dragon-2"):
        assert items[item_id]["status"] == "failed"
        assert items[item_id]["error"]["kind"] == "content_rejected"
        assert items[item_id]["attempts"] == 1, "a rejection is permanent: no second attempt"
        assert items[item_id]["image"] is None
    for item_id in ("cat", "dog"):
        assert items[item_id]["status"] == "completed"
        assert Path(items[item_id]["image"]).is_file()

    # retry one item only: it runs again (and is refused again), the other is left alone
    retried = cli(ws, "retry", job, "--items", "dragon-1", "--json")
    after = json.loads(ok(retried, code=3))
    assert after["job"]["status"] == "partial"
    items = items_by_id(after)
    assert items["dragon-1"]["attempts"] == 2
    assert items["dragon-1"]["status"] == "failed"
    assert items["dragon-1"]["error"]["kind"] == "content_rejected"
    assert items["dragon-2"]["attempts"] == 1
    assert items["dragon-2"]["status"] == "failed"
    assert items["cat"]["attempts"] == 1
    assert items["dog"]["attempts"] == 1

    # a bad --items name is refused before anything changes
    line = one_line_error(cli(ws, "retry", job, "--items", "dragon-2,unicorn"))
    assert "unicorn" in line
    line = one_line_error(cli(ws, "retry", job, "--items", "cat"))
    assert "cat" in line
    again = items_by_id(status(ws, job))
    assert again["dragon-2"]["attempts"] == 1
    assert again["dragon-2"]["status"] == "failed"


def test_all_rejected_exits_4(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path, items=3, options={"reject_pattern": "picture"})
    data = json.loads(ok(cli(ws, "run", str(spec), "--json"), code=4))
    assert data["job"]["status"] == "failed"
    assert data["job"]["counts"]["failed"] == 3
    assert all(i["error"]["kind"] == "content_rejected" for i in data["items"])


def _transient_seed(items: list[dict[str, str]], rate_500: float) -> tuple[int, set[str]]:
    """A mock seed whose first attempts fail for some items and whose second attempts all work.

    Asked of the mock itself (faults are a pure function of seed, item, prompt and attempt), so
    the test keeps working if the mock's hashing changes.
    """

    async def outcome(provider: MockProvider, item: dict[str, str], attempt: int) -> bool:
        request = GenerateRequest(
            job_id="probe", item_id=item["id"], prompt=item["prompt"], attempt=attempt, size="16x16"
        )
        try:
            await provider.generate(request)
        except Exception:
            return False
        return True

    async def search() -> tuple[int, set[str]]:
        for seed in range(500):
            options = {"seed": seed, "latency_mean_s": 0, "rate_500": rate_500}
            provider = MockProvider(ProviderConfig(options=options))
            first = {i["id"]: await outcome(provider, i, 1) for i in items}
            failed = {item_id for item_id, good in first.items() if not good}
            if not failed or len(failed) == len(items):
                continue
            if all([await outcome(provider, i, 2) for i in items if i["id"] in failed]):
                return seed, failed
        raise AssertionError("no suitable seed")

    return asyncio.run(search())


def test_retry_after_transient_failures(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    items = [{"id": f"p{n}", "prompt": f"a lantern number {n}"} for n in range(1, 6)]
    seed, failing = _transient_seed(items, rate_500=0.5)
    spec = write_spec(
        tmp_path,
        items=items,
        options={"seed": seed, "rate_500": 0.5},
        limits={"concurrency": 4, "timeout_s": 20, "max_attempts": 1},
    )
    first = json.loads(ok(cli(ws, "run", str(spec), "--json"), code=3))
    job = first["job"]["id"]
    before = items_by_id(first)
    assert {i for i, item in before.items() if item["status"] == "failed"} == failing
    assert all(before[i]["error"]["kind"] == "unavailable" for i in failing)

    final = json.loads(ok(cli(ws, "retry", job, "--json")))
    assert final["job"]["status"] == "completed"
    after = items_by_id(final)
    for item_id, item in after.items():
        assert item["status"] == "completed"
        assert item["error"] is None
        assert item["attempts"] == (2 if item_id in failing else 1)
    assert "nothing to retry" in ok(cli(ws, "retry", job))


def test_retry_runs_cancelled_items_again(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    job = ok(cli(ws, "create", str(write_spec(tmp_path, items=3)))).strip()
    ok(cli(ws, "cancel", job))
    assert status(ws, job)["job"]["status"] == "cancelled"
    retry = cli(ws, "retry", job)
    ok(retry)
    assert "retrying 3 items" in retry.stderr
    data = status(ws, job)
    assert data["job"]["status"] == "completed"
    assert {i["status"] for i in data["items"]} == {"completed"}


# ------------------------------------------------------------- status / list


def test_status_and_list_output(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path, items=REJECT_ITEMS, options={"reject_pattern": "dragon"})
    ok(cli(ws, "run", str(spec)), code=3)
    data = status(ws)
    job = data["job"]
    assert set(job) >= {"id", "key", "status", "counts", "total", "images_dir"}
    assert job["total"] == 4
    assert set(job["counts"]) == {"pending", "running", "completed", "failed", "cancelled"}
    for item in data["items"]:
        assert set(item) >= {"id", "status", "error", "image", "attempts"}
    assert [i["id"] for i in data["items"]] == [i["id"] for i in REJECT_ITEMS]

    text = ok(cli(ws, "status", job["id"]))
    assert job["id"] in text
    assert "dragon-1" in text and "content_rejected" in text

    listed = json.loads(ok(inproc(ws, "list", "--json")))
    assert [(j["id"], j["status"]) for j in listed] == [(job["id"], "partial")]
    assert job["id"] in ok(cli(ws, "list"))


# ------------------------------------------------------------------ clear-lock


def test_clear_lock_removes_a_lock_and_says_whose(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    job = ok(cli(ws, "create", str(write_spec(tmp_path)))).strip()
    with journal_at(ws) as journal:
        KeyLocks(journal.store).acquire("story-1", job)  # held by this (live) test process

    line = one_line_error(cli(ws, "start", job), code=5)
    assert job in line
    assert "clear-lock" in line

    out = ok(cli(ws, "clear-lock", "story-1"))
    assert job in out
    assert str(os.getpid()) in out
    with journal_at(ws) as journal:
        assert journal.locks.holder("story-1") is None
    assert "no lock" in ok(cli(ws, "clear-lock", "story-1"))

    ok(cli(ws, "start", job))
    assert status(ws, job)["job"]["status"] == "completed"


def test_a_stale_lock_of_a_live_process_is_taken_over(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    job = ok(cli(ws, "create", str(write_spec(tmp_path)))).strip()
    long_ago = FakeClock(wall_start=time.time() - 3600)
    with journal_at(ws) as journal:
        KeyLocks(journal.store, clock=long_ago).acquire("story-1", job)  # live pid, old heartbeat
    ok(cli(ws, "start", job))
    assert status(ws, job)["job"]["status"] == "completed"
    with journal_at(ws) as journal:
        assert journal.locks.holder("story-1") is None, "the lock is given back"


def test_clear_lock_without_a_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    one_line_error(cli(ws, "clear-lock", "story-1"))
    assert not ws.exists()


# ---------------------------------------------------- cancel and interrupt


def statuses_of(ws: Path, job: str) -> list[str]:
    return [str(item.status) for item in item_records(ws, job)]


def test_cancel_from_another_process(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(
        tmp_path,
        items=20,  # 10 s of work: the cancel lands mid-run even on a busy machine
        options={"latency_mean_s": 1.0, "latency_distribution": "fixed"},
        limits={"concurrency": 2, "timeout_s": 30, "max_attempts": 2},
    )
    log = tmp_path / "run"
    with stopped_at_end(start_cli(ws, "run", str(spec), log=log)) as proc:
        job = wait_for("the job to be recorded", lambda: only_job_id(ws), proc)
        wait_for("a completed item", lambda: "completed" in statuses_of(ws, job), proc)
        wait_for("a running item", lambda: running_items(ws, job), proc)
        seen = status(ws, job)
        assert seen["job"]["status"] == "running"
        assert any(i["status"] == "running" for i in seen["items"])

        out = ok(cli(ws, "cancel", job))
        assert "cancel requested" in out
        code, run_out, _ = finish(proc, log)

    # A job the user cancelled ends cancelled (exit 4), not partial, even with images done.
    assert code == 4, run_out
    data = status(ws, job)
    statuses = [i["status"] for i in data["items"]]
    assert "pending" not in statuses and "running" not in statuses
    assert statuses.count("cancelled") >= 4 and statuses.count("completed") >= 1
    assert data["job"]["status"] == "cancelled"
    assert data["job"]["counts"]["completed"] == statuses.count("completed")
    for record in item_records(ws, job):
        if record.status == "cancelled":
            assert all(a.outcome != "running" for a in record.attempts)
    assert "cancelled" in run_out


def test_ctrl_c_leaves_the_job_resumable(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(
        tmp_path,
        items=6,
        options={"latency_mean_s": 0.8, "latency_distribution": "fixed"},
        limits={"concurrency": 2, "timeout_s": 30, "max_attempts": 2},
    )
    log = tmp_path / "run"
    with stopped_at_end(start_cli(ws, "run", str(spec), log=log)) as proc:
        job = wait_for("the job to be recorded", lambda: only_job_id(ws), proc)
        wait_for("a running item", lambda: running_items(ws, job), proc)
        proc.send_signal(signal.SIGINT)
        code, _, err = finish(proc, log)

    assert code == 130, err
    assert f"imagebatch resume {job}" in err
    assert "Traceback" not in err
    data = status(ws, job)
    assert data["job"]["status"] == "pending"
    statuses = [i["status"] for i in data["items"]]
    assert "running" not in statuses
    assert "pending" in statuses
    for record in item_records(ws, job):
        assert all(a.outcome != "running" for a in record.attempts)
        if record.status == "pending" and record.attempts:
            # a call in flight is closed as interrupted; an image already received is kept
            last = record.attempts[-1]
            assert last.outcome == "interrupted" or (last.outcome == "ok" and record.raw_path)

    final = json.loads(ok(cli(ws, "resume", job, "--json")))
    assert final["job"]["status"] == "completed"
    assert all(Path(i["image"]).is_file() for i in final["items"])


# ------------------------------------------------------------------------ demo


def test_demo(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    result = cli(ws, "demo", "--json")
    out = ok(result)
    finished = json.loads(out)
    assert finished["job"]["status"] == "completed"

    data = status(ws)
    assert data["job"]["id"] == finished["job"]["id"]
    assert data["job"]["status"] == "completed"
    assert data["job"]["counts"]["completed"] == 12
    assert data["job"]["finished_at"] is not None
    assert len(data["items"]) == 12
    for item in data["items"]:
        assert item["status"] == "completed"
        image = Path(item["image"])
        assert image.is_file() and image.suffix == ".jpg"
        assert image.read_bytes()[:3] == b"\xff\xd8\xff", "a real JPEG"
        assert Path(item["raw"]).is_file()
        assert Path(item["thumbnail"]).is_file()
        assert image.is_relative_to(ws)
    assert (ws / "journal").is_dir()
    assert len(list((ws / "images" / data["job"]["id"] / "thumbs").iterdir())) == 12


def test_common_options_also_work_after_the_subcommand(tmp_path: Path) -> None:
    ws = tmp_path / "after"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["demo", "--count", "2", "--workspace", str(ws), "--no-progress"])
    assert code == 0, err.getvalue()
    assert (ws / "journal").is_dir()
    assert "page-01: completed" in err.getvalue()  # --no-progress: one line per image


def test_a_reference_that_is_no_image_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not a picture")
    spec = tmp_path / "refs.json"
    item = {"id": "p1", "prompt": "a knight", "references": ["notes.png"]}
    spec.write_text(json.dumps({"key": "refs", "items": [item]}))
    ws = tmp_path / "ws"
    line = one_line_error(inproc(ws, "run", str(spec)))
    assert "items[0].references" in line and "notes.png" in line
    assert not ws.exists()


def test_output_to_a_full_disk_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """`imagebatch run SPEC > out.txt` where out.txt's disk is full (/dev/full answers every
    write with ENOSPC): the job completes and is recorded; the command says in one line that
    its output was lost, exit 1. Before, a traceback."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    ws = tmp_path / "ws"
    spec = str(write_spec(tmp_path, items=3))
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", "--workspace", str(ws), "run", spec],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            timeout=TIMEOUT_S,
        )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "imagebatch: error: the output could not be written (No space left on device)"
    )
    assert status(ws)["job"]["status"] == "completed"

"""How each variant of a scenario runs, in its own processes, and what it leaves to measure.

- imagebatch: the real CLI (`imagebatch run SPEC --no-progress`) in a fresh process and a fresh
  workspace, timed from spawn to exit; its calls come from the fake server's log (HTTP) or the
  journal's attempts (mock). Several processes share one workspace in the `ten` scenario.
- the baselines: one child process (`--child baseline`) that says `ready` once imported and
  starts when told `go`. On the mock, both baselines run at the same time as imagebatch (all
  three mostly sleep: the mock's latency is a timer); over HTTP, each variant runs alone
  against a fresh fake server, so idle gaps are not disturbed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from orchestrator import ItemRecord, Orchestrator, Workspace
from orchestrator.testing.fakeserver import FakeServerOptions
from orchestrator.testing.fakeserver.thread import ServerThread

from .report import REPO
from .speed_plan import HTTP_MODEL, HTTP_SIZE, MOCK_SIZE, Scenario
from .timeline import Call, calls_from_items, calls_from_log

__all__ = ["Outcome", "run_seed", "spec_data"]

LOG_SIZE = 200_000
CHILD_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Outcome:
    """What one variant did on one seed."""

    variant: str
    """`imagebatch`, `fixed` or `bare`."""
    calls: list[Call]
    spawned: float | None = None
    """Wall-clock time the (first) imagebatch process was started."""
    exited: float | None = None
    """Wall-clock time the (last) imagebatch process ended."""
    exit_codes: tuple[int, ...] = ()


def spec_data(scenario: Scenario, seed: int, part: int = 0) -> dict[str, Any]:
    """The job spec of process `part`: every `processes`-th item from `part` on."""
    ids, prompts = scenario.item_ids(), scenario.prompts(seed)
    chosen = range(part, scenario.items, scenario.processes)
    limits: dict[str, Any] = {
        "concurrency": scenario.concurrency,
        "timeout_s": scenario.timeout_s,
        "max_attempts": scenario.max_attempts,
    }
    rate = scenario.per_minute(scenario.rate_per_model_min)
    if rate is not None:
        limits["rate_per_minute"] = rate
    data: dict[str, Any] = {
        "key": f"speed-{scenario.name}-{seed}-{part}",
        "limits": limits,
        "items": [{"id": ids[n], "prompt": prompts[n]} for n in chosen],
    }
    if scenario.backend == "mock":
        data |= {"provider": "mock", "provider_options": scenario.mock_options(seed)}
        data["defaults"] = {"size": MOCK_SIZE}
    else:
        data |= {"provider": "openai", "model": HTTP_MODEL}
        data |= {"provider_options": {"response_format": "b64_json"}}
        data["defaults"] = {"size": HTTP_SIZE}
    return data


def server_options(scenario: Scenario, seed: int) -> FakeServerOptions:
    return FakeServerOptions(
        latency_s=scenario.mean_s,
        latency_sigma=scenario.sigma,
        seed=seed,
        max_concurrent=scenario.cap,
        quota_per_minute=scenario.per_minute(scenario.quota_per_model_min),
        quota_burst=scenario.quota_burst,
        retry_after_s=scenario.model_s,  # one model second
        rate_500=scenario.rate_500,
        rate_hang=scenario.rate_hang,
        hang_s=2 * scenario.timeout_s,
        log_size=LOG_SIZE,
    )


def run_seed(scenario: Scenario, seed: int, folder: Path) -> list[Outcome]:
    """Every variant of the scenario on this seed, imagebatch first."""
    if scenario.backend == "mock":
        return _mock_seed(scenario, seed, folder)
    outcomes = [_http_imagebatch(scenario, seed, folder)]
    if scenario.baselines:
        for variant in ("fixed", "bare"):
            outcomes.append(_http_baseline(scenario, seed, variant, folder))
    return outcomes


def _mock_seed(scenario: Scenario, seed: int, folder: Path) -> list[Outcome]:
    baseline = _start_baseline(scenario, seed, "fixed,bare", None) if scenario.baselines else None
    spawned = time.time()
    cli = _start_cli(scenario, seed, folder, 0, {})
    if baseline is not None:
        _go(baseline)
    codes = (_wait(cli),)
    exited = time.time()
    items = asyncio.run(_journal_items(folder / "workspace"))
    outcomes = [Outcome("imagebatch", calls_from_items(items), spawned, exited, codes)]
    if baseline is not None:
        found = _finish_baseline(baseline)
        outcomes += [Outcome(name, calls) for name, calls in found.items()]
    return outcomes


def _http_imagebatch(scenario: Scenario, seed: int, folder: Path) -> Outcome:
    with ServerThread(server_options(scenario, seed)) as thread:
        env = {"OPENAI_BASE_URL": f"{thread.server.url}/v1", "OPENAI_API_KEY": "sk-bench"}
        spawned = time.time()
        clis = [_start_cli(scenario, seed, folder, part, env) for part in range(scenario.processes)]
        codes = tuple(_wait(cli) for cli in clis)
        exited = time.time()
        log = thread.call(thread.log())
    return Outcome("imagebatch", calls_from_log(log), spawned, exited, codes)


def _http_baseline(scenario: Scenario, seed: int, variant: str, folder: Path) -> Outcome:
    with ServerThread(server_options(scenario, seed)) as thread:
        child = _start_baseline(scenario, seed, variant, thread.server.url)
        _go(child)
        _finish_baseline(child)
        log = thread.call(thread.log())
    return Outcome(variant, calls_from_log(log))


def _start_cli(
    scenario: Scenario, seed: int, folder: Path, part: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    spec = folder / f"spec-{part}.json"
    spec.write_text(json.dumps(spec_data(scenario, seed, part)), encoding="utf-8")
    command = [*_imagebatch(), "run", str(spec), "--workspace", str(folder / "workspace")]
    with (folder / f"cli-{part}.out").open("wb") as out:
        return subprocess.Popen(
            [*command, "--no-progress"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_clean_env(env),
            cwd=folder,
        )


def _imagebatch() -> list[str]:
    """The installed `imagebatch` script next to this Python, or `python -m orchestrator`."""
    script = Path(sys.executable).with_name("imagebatch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "orchestrator"]


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEBATCH_", "OPENAI_"))}
    return {**env, **extra}


def _wait(process: subprocess.Popen[bytes]) -> int:
    return process.wait(timeout=CHILD_TIMEOUT_S)


def _start_baseline(
    scenario: Scenario, seed: int, variants: str, url: str | None
) -> subprocess.Popen[str]:
    """A baseline child, imported and ready: it starts when told `go`."""
    command = [sys.executable, "-m", "benchmarks", "speed", "--child", "baseline"]
    command += ["--scenario", json.dumps(dataclasses.asdict(scenario)), "--seed", str(seed)]
    command += ["--variants", variants] + (["--url", url] if url else [])
    child = subprocess.Popen(
        command,
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_clean_env({}),
    )
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        child.kill()
        raise RuntimeError("speed: the baseline child did not start")
    return child


def _go(child: subprocess.Popen[str]) -> None:
    stdin: IO[str] | None = child.stdin
    assert stdin is not None
    stdin.write("go\n")
    stdin.flush()


def _finish_baseline(child: subprocess.Popen[str]) -> dict[str, list[Call]]:
    out, _ = child.communicate(timeout=CHILD_TIMEOUT_S)
    if child.returncode != 0:
        raise RuntimeError(f"speed: the baseline child failed ({child.returncode})")
    found: dict[str, list[list[Any]]] = json.loads(out.strip().splitlines()[-1])
    return {name: [Call.from_json(call) for call in calls] for name, calls in found.items()}


async def _journal_items(root: Path) -> list[ItemRecord]:
    async with Orchestrator(Workspace(root)) as orchestrator:
        items = []
        for job in await orchestrator.jobs():
            items += await orchestrator.handle(job.id).items()
        return items

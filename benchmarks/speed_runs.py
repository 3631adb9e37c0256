"""How each variant of a scenario runs, in its own processes, and what it leaves to measure.

- imagebatch: the real CLI (`imagebatch run SPEC --no-progress`) in a fresh process and a fresh
  workspace, timed from spawn to exit; its calls come from the fake server's log (HTTP) or the
  journal's attempts (mock). Several processes share one workspace in the `ten` scenario.
- the baselines: one child process for the whole run (`BaselineChild`). On the mock, a seed's
  baselines start with imagebatch's run of it and may still run during the next seeds (they
  only sleep: the mock's latency is a timer); over HTTP, each variant runs alone against a
  fresh fake server, after imagebatch, so idle gaps are not disturbed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
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

__all__ = ["BaselineChild", "Outcome", "Pending", "run_seed", "spec_data"]

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


@dataclass(frozen=True)
class Pending:
    """imagebatch's run of one seed, and its baselines: done, or still running in the child."""

    seed: int
    ours: Outcome
    done: list[Outcome]
    order: int | None
    """The child's order running the baselines, if it still runs."""

    def outcomes(self, child: BaselineChild) -> list[Outcome]:
        """Every variant's outcome, imagebatch first (waits for the baselines if need be)."""
        found = [self.ours, *self.done]
        if self.order is not None:
            found += [Outcome(name, calls) for name, calls in child.result(self.order).items()]
        return found


def run_seed(scenario: Scenario, seed: int, folder: Path, child: BaselineChild) -> Pending:
    """imagebatch on this seed, and the baselines: over HTTP after it, each against its own
    server; on the mock, started with it and left running in the child (they only sleep)."""
    if scenario.backend == "mock":
        order = child.order(scenario, seed) if scenario.baselines else None
        spawned = time.time()
        cli = _start_cli(scenario, seed, folder, 0, {})
        codes = (_wait(cli),)
        exited = time.time()
        items = asyncio.run(_journal_items(folder / "workspace"))
        ours = Outcome("imagebatch", calls_from_items(items), spawned, exited, codes)
        return Pending(seed, ours, [], order)
    done = []
    ours = _http_imagebatch(scenario, seed, folder)
    if scenario.baselines:
        done = [_http_baseline(scenario, seed, variant, child) for variant in ("fixed", "bare")]
    return Pending(seed, ours, done, None)


def _http_imagebatch(scenario: Scenario, seed: int, folder: Path) -> Outcome:
    with ServerThread(server_options(scenario, seed)) as thread:
        env = {"OPENAI_BASE_URL": f"{thread.server.url}/v1", "OPENAI_API_KEY": "sk-bench"}
        spawned = time.time()
        clis = [_start_cli(scenario, seed, folder, part, env) for part in range(scenario.processes)]
        codes = tuple(_wait(cli) for cli in clis)
        exited = time.time()
        log = thread.call(thread.log())
    return Outcome("imagebatch", calls_from_log(log), spawned, exited, codes)


def _http_baseline(scenario: Scenario, seed: int, variant: str, child: BaselineChild) -> Outcome:
    with ServerThread(server_options(scenario, seed)) as thread:
        child.result(child.order(scenario, seed, (variant,), thread.server.url))
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


class BaselineChild:
    """The baseline child process (see `baselines`): orders go in as JSON lines; each order's
    calls come back in a file, its id on a line when it is written."""

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="imagebatch-speed-answers-"))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks", "speed", "--child", "baseline"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_clean_env({}),
        )
        self._orders = 0
        self._answered: set[int] = set()
        if self._line() != "ready":
            self.close()
            raise RuntimeError("speed: the baseline child did not start")

    def order(
        self,
        scenario: Scenario,
        seed: int,
        variants: tuple[str, ...] = ("fixed", "bare"),
        url: str | None = None,
    ) -> int:
        """Start the baselines of `scenario` on `seed` (against `url`, else the mock) at once."""
        self._orders += 1
        order = {
            "id": self._orders,
            "scenario": dataclasses.asdict(scenario),
            "seed": seed,
            "variants": list(variants),
            "url": url,
            "answer": str(self._folder / f"{self._orders}.json"),
        }
        stdin: IO[str] | None = self._process.stdin
        assert stdin is not None
        stdin.write(json.dumps(order) + "\n")
        stdin.flush()
        return self._orders

    def result(self, order: int) -> dict[str, list[Call]]:
        """The calls of each variant of `order`, once it is done."""
        while order not in self._answered:
            self._answered.add(int(self._line()))
        found: dict[str, list[list[Any]]] = json.loads(
            (self._folder / f"{order}.json").read_text(encoding="utf-8")
        )
        return {name: [Call.from_json(call) for call in calls] for name, calls in found.items()}

    def _line(self) -> str:
        stdout: IO[str] | None = self._process.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"speed: the baseline child ended ({self._process.poll()})")
        return line.strip()

    def close(self) -> None:
        """Let the child finish what it runs and end; remove the answers."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=CHILD_TIMEOUT_S)
        finally:
            if self._process.returncode is None:
                self._process.kill()
            shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> BaselineChild:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _journal_items(root: Path) -> list[ItemRecord]:
    async with Orchestrator(Workspace(root)) as orchestrator:
        items = []
        for job in await orchestrator.jobs():
            items += await orchestrator.handle(job.id).items()
        return items

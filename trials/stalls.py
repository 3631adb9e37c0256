"""Trials of calls that stop answering and of runs stopped by a cancel, over loopback HTTP against
the fake server, measured from its request log (arrival and answer times) and the journal.

- 2% of calls hang: each is given up at the job's per-attempt timeout, and its slot goes back
  to the lane (the lane runs all its slots again after it).
- A cancel at a random moment: no attempt starts once the cancel is committed, and the server
  sees no call under way 2 s later (the calls in flight are abandoned, not waited for).
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from orchestrator import Orchestrator
from orchestrator.events import JobCancelRequested
from orchestrator.storage import Workspace

from . import _procs as procs
from . import _timeline as timeline
from .registry import Result, Rounds, trial

TIMEOUT_S = 2.0
CONCURRENCY = 4
HANG_SEEDS = (49, 81, 85, 107)
"""Seeds of the fake server's draws that hang three or four of the first 40 prompts' first
calls (2% of calls hang) and none of their second."""


@trial("hangs", "2% of calls hang: each cancelled at its timeout (+- 1 s); slot freed")
def hangs(rounds: Rounds) -> Result:
    count = rounds.count(1, len(HANG_SEEDS))
    failures: list[str] = []
    durations: list[float] = []
    refilled = measurable = 0
    for round_, seed in enumerate(HANG_SEEDS[:count]):
        with procs.fake_server(latency_s=0.5, rate_hang=0.02, hang_s=12.0, seed=seed) as thread:
            spec = procs.openai_spec(
                rounds.folder,
                f"hangs-{round_}",
                items=40,
                limits={"concurrency": CONCURRENCY, "timeout_s": TIMEOUT_S, "max_attempts": 3},
            )
            ran = timeline.run_job(thread, rounds.folder, f"hangs-{round_}", spec)
            log = timeline.requests(thread)
        if ran.code != 0:
            failures.append(f"round {round_}: exit {ran.code}: {ran.err.strip()[-200:]!r}")
        hung = [request for request in log if request.outcome == "hang"]
        if ran.job_id is not None:
            durations += _given_up_after(log, ran.ws, ran.job_id)
        for request in hung:
            full = _slots_refilled(log, request.answered)
            if full is not None:
                measurable += 1
                refilled += full
    off = max((abs(d - TIMEOUT_S) for d in durations), default=float("inf"))
    measured = (
        f"{len(durations)} hung calls, given up {min(durations, default=0):.2f}-"
        f"{max(durations, default=0):.2f} s after their attempt began (timeout {TIMEOUT_S:g} s); "
        f"all {CONCURRENCY} slots busy again after {refilled} of {measurable}"
    )
    passed = off <= 1.0 and measurable > 0 and refilled == measurable and not failures
    return Result(measured, passed, procs.tally(failures))


def _given_up_after(log: list[timeline.Request], ws: Path, job_id: str) -> list[float]:
    """For each hung call: from its attempt's start (the journal; the timeout counts from
    there, and the first calls wait for the SDK to load) to the moment the client left it."""
    by_prompt: dict[str, list[timeline.Request]] = {}
    for request in log:
        by_prompt.setdefault(request.prompt, []).append(request)
    return [
        request.answered - attempt.started_at
        for item in procs.items(ws, job_id)
        for attempt, request in zip(item.attempts, by_prompt.get(item.prompt, []), strict=False)
        if request.outcome == "hang"
    ]


def _slots_refilled(log: list[timeline.Request], given_up: float) -> bool | None:
    """Whether the lane ran all its slots within a second of a hung call being given up; None
    when too few images were left then to fill them."""
    left = sum(1 for r in log if r.outcome == "image" and r.answered > given_up)
    if left < CONCURRENCY + 1:
        return None
    busy = max(timeline.in_flight(log, at) for at in timeline.samples(given_up, given_up + 1.0))
    return busy >= CONCURRENCY


@trial(
    "cancel",
    "cancel at a random moment: 0 attempts started after the cancel is committed; quiet (no call "
    "under way) within 2 s",
)
def cancel(rounds: Rounds) -> Result:
    count = rounds.count(2, 50)
    failures: list[str] = []
    late = 0
    quiet: list[float] = []
    for round_ in range(count):
        started, silent = _cancel_round(rounds.folder, round_, failures)
        late += started
        quiet.append(silent)
    slowest = max(quiet, default=float("inf"))
    measured = (
        f"{count} cancels: {late} attempts started after the cancel was committed; "
        f"quiet {slowest:.2f} s after it at the latest"
    )
    return Result(measured, late == 0 and slowest <= 2.0 and not failures, procs.tally(failures))


def _cancel_round(folder: Path, round_: int, failures: list[str]) -> tuple[int, float]:
    """Run images 4 at once, cancel at a random moment through the Python API; the attempts
    started after the cancel's commit, and when the last call ended after it. Even rounds: 16
    images of 3 s (the calls under way would take up to 3 s more if the run waited for them);
    odd rounds: 60 images of 0.2 s (attempts start all the time, right up to the cancel)."""
    rng = random.Random(round_)
    latency, count, within = (3.0, 16, 6.0) if round_ % 2 == 0 else (0.2, 60, 2.5)
    with procs.fake_server(latency_s=latency, seed=round_) as thread:
        spec = procs.openai_spec(
            folder,
            f"cancel-{round_}",
            items=count,
            limits={"concurrency": CONCURRENCY, "timeout_s": 20, "max_attempts": 3},
        )
        ws, log = folder / f"cancel-{round_}-ws", folder / f"cancel-{round_}"
        proc = procs.start(ws, "run", str(spec), log=log, environ=procs.fake_env(thread))
        with procs.reaped(proc):
            job_id = procs.wait_for("the job", lambda: procs.only_job_id(ws), proc)
            procs.wait_for("a first call", lambda: procs.server_log(thread), proc)
            time.sleep(rng.uniform(0.0, within))
            asyncio.run(_cancel(ws, job_id))
            code, err = procs.finish(proc, log)
        calls = timeline.requests(thread)
    if code not in (0, 4):  # 0: it finished before the cancel
        failures.append(f"round {round_}: exit {code}: {err.strip()[-200:]!r}")
    committed = next(
        event.ts for event in procs.events(ws, job_id) if isinstance(event, JobCancelRequested)
    )
    attempts = [a for item in procs.items(ws, job_id) for a in item.attempts]
    late = sum(1 for attempt in attempts if attempt.started_at > committed)
    last = max((call.answered for call in calls), default=committed)
    return late, max(0.0, last - committed)


async def _cancel(ws: Path, job_id: str) -> None:
    async with Orchestrator(Workspace(ws), env=procs.env()) as orchestrator:
        await orchestrator.handle(job_id).cancel()

"""The outage trial: the fake server answers every call 500 for a while, then recovers. The calls
made during the outage must stay few (the lane's circuit breaker stops starting attempts and
sends one probe at growing intervals), and the job must complete once the provider is back:
the outage must not use up the items' attempts."""

from __future__ import annotations

import math
import threading
import time

from orchestrator.testing.fakeserver.thread import ServerThread

from . import _procs as procs
from . import _timeline as timeline
from .registry import Result, Rounds, trial

OUTAGE_S = 6.0
CONCURRENCY = 4
BREAKER_AFTER = 5
"""Failures in a row that open a lane's breaker (`orchestrator.breaker`)."""
BOUND = BREAKER_AFTER + CONCURRENCY + math.ceil(math.log2(OUTAGE_S)) + 1
"""The failures that open the breaker, the calls already under way then, and one probe per
doubling of the cool-down (1 s, 2 s, 4 s, ...) while the outage lasts."""


@trial(
    "outage",
    f"100% 5xx for {OUTAGE_S:g} s, then healthy: calls during the outage bounded by a retry "
    f"budget / circuit breaker (at most {BOUND}); the job completes after",
)
def outage(rounds: Rounds) -> Result:
    count = rounds.count(1, 10)
    failures: list[str] = []
    calls: list[int] = []
    for round_ in range(count):
        with procs.fake_server(latency_s=0.05, rate_500=1.0, seed=round_) as thread:
            healer = threading.Thread(target=_heal_after_outage, args=(thread,), daemon=True)
            healer.start()
            spec = procs.openai_spec(
                rounds.folder,
                f"outage-{round_}",
                items=20,
                limits={"concurrency": CONCURRENCY, "timeout_s": 20, "max_attempts": 3},
            )
            ran = timeline.run_job(thread, rounds.folder, f"outage-{round_}", spec)
            healer.join(timeout=procs.TIMEOUT_S)
            log = timeline.requests(thread)
        calls.append(sum(1 for request in log if request.outcome == "server_error"))
        if ran.code != 0:
            failures.append(f"round {round_}: exit {ran.code}: {ran.err.strip()[-200:]!r}")
    most = max(calls)
    measured = (
        f"{count} outages of {OUTAGE_S:g} s: at most {most} calls during one; "
        f"{count - len(failures)} of {count} jobs completed after"
    )
    return Result(measured, most <= BOUND and not failures, procs.tally(failures))


def _heal_after_outage(thread: ServerThread) -> None:
    """From the first call on, answer 500 for `OUTAGE_S`, then serve again."""
    deadline = time.monotonic() + procs.WAIT_S
    while not procs.server_log(thread) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(OUTAGE_S)
    thread.call(_configure(thread, rate_500=0.0))


async def _configure(thread: ServerThread, **changes: float) -> None:
    thread.server.configure(**changes)

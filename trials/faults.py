"""Fault trials over loopback HTTP: `imagebatch run` with the real `openai` SDK (and the Gemini
REST client) against the fake server, measured from the server's own request log.

- 429 with Retry-After on 30% of calls: no request reaches the server before the wait ends, and
  outside the waits the slots stay busy.
- Answers that another attempt cannot mend (400 moderation_blocked, 401, 429 insufficient_quota,
  Gemini's 200 with no image): one call each, the exact reason per item, and a refused key or an
  empty account stops every further call of the run.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from orchestrator.events import ItemRetrying

from . import _procs as procs
from . import _timeline as timeline
from .registry import Result, Rounds, trial

RETRY_AFTER_S = 0.2
RESTART_S = 0.3
"""How long the client may take to notice a 429 and to start again after its wait, on two
busy cores (its cool-down counts from when it read the 429, not from when it was sent)."""
CONCURRENCY = 4


EXTRA_ROUNDS = 3
"""Rounds run past the count while none has measured the free slots' use."""


@trial(
    "retry-after",
    "429 with Retry-After on 30% of calls: 0 requests before Retry-After ends (per lane/key); "
    "free slots stay used",
)
def retry_after(rounds: Rounds) -> Result:
    count = rounds.count(1, 10)
    early, failures, runs = 0, [], 0
    use: list[float] = []
    for round_ in range(count + EXTRA_ROUNDS):
        if round_ >= count and use:
            break  # a round's draws may give no item a backoff of its own to measure by
        runs += 1
        with procs.fake_server(
            latency_s=1.0, rate_429=0.3, retry_after_s=RETRY_AFTER_S, seed=round_
        ) as thread:
            spec = procs.openai_spec(
                rounds.folder,
                f"limited-{round_}",
                items=16,
                limits={"concurrency": CONCURRENCY, "timeout_s": 20, "max_attempts": 20},
            )
            ran = timeline.run_job(thread, rounds.folder, f"limited-{round_}", spec)
            log = timeline.requests(thread)
        if ran.code != 0 or ran.job_id is None:
            failures.append(f"round {round_}: exit {ran.code}: {ran.err.strip()[-200:]!r}")
            continue
        early += _too_early(log, ran.ws, ran.job_id)
        if (share := _slot_use(log, _backoffs(ran.ws, ran.job_id))) is not None:
            use.append(share)  # None: no item waited beyond the lane's wait in this round
    used = min(use, default=0.0)
    measured = (
        f"{runs} runs, {RETRY_AFTER_S:g} s Retry-After: {early} requests before it ended; "
        f"while an item waited out its backoff, the others used {used:.0%} of the free slots "
        "at the least"
    )
    return Result(measured, early == 0 and used >= 0.85 and not failures, procs.tally(failures))


def _too_early(log: list[timeline.Request], ws: Path, job_id: str) -> int:
    """Requests sent after the client read a 429 and before that 429's Retry-After ended.

    Each request is matched to its attempt in the journal (per item, in order): a request the
    client sent before it read the 429 is no fault even if it arrives later; one sent after it
    must wait out the Retry-After, counted from when the server answered."""
    sent: list[float] = []
    windows: list[tuple[float, float]] = []
    by_prompt: dict[str, list[timeline.Request]] = {}
    for request in log:
        by_prompt.setdefault(request.prompt, []).append(request)
    for item in procs.items(ws, job_id):
        for attempt, request in zip(item.attempts, by_prompt.get(item.prompt, []), strict=False):
            sent.append(attempt.started_at)
            if request.outcome == "rate_limited" and attempt.ended_at is not None:
                windows.append((attempt.ended_at, request.answered + RETRY_AFTER_S))
    return sum(1 for at in sent if any(read < at < end for read, end in windows))


def _backoffs(ws: Path, job_id: str) -> dict[str, list[tuple[float, float]]]:
    """Per prompt, when its item waited out its own backoff after a failed attempt (it asks
    for no slot then)."""
    prompts = {item.id: item.prompt for item in procs.items(ws, job_id)}
    waits: dict[str, list[tuple[float, float]]] = {}
    for event in procs.events(ws, job_id):
        if isinstance(event, ItemRetrying) and event.item_id is not None:
            span = (event.ts, event.ts + event.delay_s)
            waits.setdefault(prompts[event.item_id], []).append(span)
    return waits


def _slot_use(
    log: list[timeline.Request], backoffs: dict[str, list[tuple[float, float]]]
) -> float | None:
    """While an item waits out its own backoff after a 429 (outside the lane's Retry-After
    waits, and the moment it takes to start again after one): requests in flight over the
    slots the other unfinished items could use, on average. The waiting item must not keep
    a slot from them."""
    waits = [
        (r.answered, r.answered + RETRY_AFTER_S + RESTART_S)
        for r in log
        if r.outcome == "rate_limited"
    ]
    finished = {r.prompt: r.answered for r in log if r.outcome == "image"}
    shares = []
    for at in timeline.samples(log[0].arrived, max(finished.values(), default=0.0)):
        if any(start <= at < end for start, end in waits):
            continue
        waiting = {
            prompt
            for prompt, spans in backoffs.items()
            if any(start <= at < end for start, end in spans)
        }
        ready = sum(1 for prompt, done in finished.items() if at < done and prompt not in waiting)
        if ready and waiting:
            shares.append(min(1.0, timeline.in_flight(log, at) / min(CONCURRENCY, ready)))
    return statistics.fmean(shares) if shares else None

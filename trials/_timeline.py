"""Reading a fake server's request log as a timeline: what was in flight when, and one
`imagebatch run` against a fake server, the way the fault trials start theirs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.testing.fakeserver.thread import ServerThread

from . import _procs as procs

STEP_S = 0.01


@dataclass(frozen=True)
class Request:
    """One request as the fake server logged it (wall-clock times)."""

    prompt: str
    outcome: str
    arrived: float
    answered: float


def requests(thread: ServerThread) -> list[Request]:
    """Every answered (or abandoned) request of the server's log, by arrival."""
    return sorted(
        (
            Request(entry["prompt"], entry["outcome"], entry["arrived"], entry["answered"])
            for entry in procs.server_log(thread)
            if "answered" in entry
        ),
        key=lambda request: request.arrived,
    )


def in_flight(log: list[Request], at: float) -> int:
    """Requests the server was working on at `at`."""
    return sum(1 for request in log if request.arrived <= at < request.answered)


def samples(start: float, end: float) -> list[float]:
    """Moments from `start` to `end`, `STEP_S` apart."""
    count = max(0, int((end - start) / STEP_S))
    return [start + n * STEP_S for n in range(count)]


@dataclass
class Ran:
    code: int
    err: str
    ws: Path
    job_id: str | None


def run_job(thread: ServerThread, folder: Path, name: str, spec: Path, *args: str) -> Ran:
    """`imagebatch run spec` against the fake server, to its end."""
    ws = folder / f"{name}-ws"
    log = folder / name
    proc = procs.start(ws, "run", str(spec), *args, log=log, environ=procs.fake_env(thread))
    with procs.reaped(proc):
        code, err = procs.finish(proc, log)
    return Ran(code, err, ws, procs.only_job_id(ws))

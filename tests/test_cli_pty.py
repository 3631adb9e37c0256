"""The `imagebatch` command line on a real pseudo-terminal, with the live display on.

`python -m orchestrator ... run` runs under `pexpect` on an 80x24 pty, as a person's terminal
would run it: stderr is a terminal, so the live `rich` display draws. A person's Ctrl-C is the
terminal's interrupt character (`sendintr`), which the pty turns into SIGINT for the process.
Everything the terminal received is kept and replayed through a terminal emulator (`pyte`) to
see the screen a person is left with. Waits poll the output and the journal with a bounded
deadline; the bounds only catch "never", nothing asserts how long anything took.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pexpect
import pyte
import pytest
from rich.cells import cell_len
from rich.console import Console

from orchestrator.records import ItemRecord

from .cli_helpers import (
    TIMEOUT_S,
    WAIT_S,
    _env,
    cli,
    item_records,
    ok,
    only_job_id,
    running_items,
    status,
    wait_for,
    write_spec,
)

ROWS, COLUMNS = 24, 80
STOP_S = 10
"""How long a stopped run may take to exit: generous, it only catches one that never does."""
SCROLLBACK_ROWS = 1000
"""The emulated screen is this tall, so lines that scrolled off the 24 rows are still counted."""
SLOW = {"latency_mean_s": 1.0, "latency_distribution": "fixed"}
LEAVE_ALTERNATE_SCREEN = "\x1b[?1049l"
"""What a full-screen app writes as it gives the terminal its screen back."""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
# Variables that would override what rich reads from the pty itself.
RICH_OVERRIDES = ("COLUMNS", "LINES", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR")


def _pty_env() -> dict[str, str]:
    env = {k: v for k, v in _env().items() if k not in RICH_OVERRIDES}
    env["TERM"] = "xterm-256color"
    return env


@contextlib.contextmanager
def on_a_terminal(ws: Path, *args: str) -> Iterator[pexpect.spawn[str]]:
    """`python -m orchestrator --workspace ws args...` on an 80x24 pty; killed if left running.

    It runs in `ws`'s parent folder, so `-m orchestrator` finds the package the tests import
    (the installed one, or the one `PYTHONPATH` names), never a checkout in the caller's folder.
    """
    child = pexpect.spawn(
        sys.executable,
        ["-m", "orchestrator", "--workspace", str(ws), *args],
        cwd=str(ws.parent),
        dimensions=(ROWS, COLUMNS),
        env=_pty_env(),
        encoding="utf-8",
        codec_errors="replace",
        timeout=TIMEOUT_S,
    )
    child.logfile_read = io.StringIO()
    try:
        yield child
    finally:
        if child.isalive():
            child.terminate(force=True)
        child.close(force=True)


def received(child: pexpect.spawn[str]) -> str:
    """Everything the terminal received so far."""
    log = child.logfile_read
    assert isinstance(log, io.StringIO)
    return log.getvalue()


def wait_on(child: pexpect.spawn[str], what: str, condition: Callable[[], Any]) -> Any:
    """Poll `condition` (bounded), reading the terminal meanwhile so its buffer never fills."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if child.expect([pexpect.TIMEOUT, pexpect.EOF], timeout=0.05) == 1:
            raise AssertionError(f"the CLI ended before {what}:\n{received(child)}")
    raise AssertionError(f"gave up waiting for {what}")


def exit_code(child: pexpect.spawn[str], what: str, timeout: float = STOP_S) -> int:
    """Wait (bounded) for the end of output and of the process; its exit code."""
    try:
        child.expect(pexpect.EOF, timeout=timeout)
    except pexpect.TIMEOUT:
        screen = "\n".join(final_screen(received(child))[-6:])
        raise AssertionError(
            f"the CLI still runs {timeout:g} s after {what}; it shows:\n{screen}"
        ) from None
    deadline = time.monotonic() + WAIT_S
    while child.isalive():
        assert time.monotonic() < deadline, "the CLI closed its terminal but did not exit"
        time.sleep(0.02)
    assert child.signalstatus is None, f"killed by signal {child.signalstatus}"
    code = child.exitstatus
    assert code is not None
    return code


def final_screen(output: str, rows: int = SCROLLBACK_ROWS) -> list[str]:
    """The non-empty lines a terminal of COLUMNS columns shows after `output`, top to bottom."""
    screen = pyte.Screen(COLUMNS, rows)
    pyte.Stream(screen).feed(output)
    return [line.rstrip() for line in screen.display if line.strip()]


def drawn_lines(output: str) -> list[str]:
    """Each run of text the program drew from the start of a line (escape sequences removed)."""
    return re.split(r"[\r\n]", ANSI.sub("", output))


# ------------------------------------------------------------------- stopping


def _ctrl_c(child: pexpect.spawn[str]) -> None:
    child.sendintr()  # the terminal's interrupt character: what a person's Ctrl-C sends


def _sigterm(child: pexpect.spawn[str]) -> None:
    child.kill(signal.SIGTERM)


@pytest.mark.parametrize(
    ("stop", "code"), [(_ctrl_c, 130), (_sigterm, 143)], ids=["ctrl-c", "sigterm"]
)
def test_a_stopped_run_on_a_terminal_exits_and_stays_resumable(
    tmp_path: Path, stop: Callable[[pexpect.spawn[str]], None], code: int
) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(
        tmp_path,
        items=12,
        options=SLOW,
        limits={"concurrency": 2, "timeout_s": 30, "max_attempts": 2},
    )
    with on_a_terminal(ws, "run", str(spec)) as child:
        child.expect(r"job (\S+): 12 images")  # the CLI's first line, before the display
        assert isinstance(child.match, re.Match)
        job = child.match.group(1)
        child.expect(r"\b[1-9]\d* running")  # the live display shows an image in flight
        wait_on(child, "the job in the journal", lambda: only_job_id(ws) == job)
        wait_on(child, "a running item in the journal", lambda: running_items(ws, job))
        stop(child)
        assert exit_code(child, "the signal") == code, received(child)
        output = received(child)

    assert "Traceback" not in output, output
    resume = f"imagebatch resume {job}"
    assert resume in output, output
    assert "running" not in output[output.index(resume) :], "the display drew after the end"
    assert job in "".join(final_screen(output)[-2:]), "the message is not the last thing shown"

    data = status(ws, job)
    assert data["job"]["status"] == "pending"
    statuses = [item["status"] for item in data["items"]]
    assert "running" not in statuses
    assert "pending" in statuses
    final = json.loads(ok(cli(ws, "resume", job, "--json")))
    assert final["job"]["status"] == "completed"
    assert all(Path(item["image"]).is_file() for item in final["items"])


def _run_and_interrupt(
    tmp_path: Path, presses: int, press: Callable[[pexpect.spawn[str]], None] = _ctrl_c
) -> tuple[str, int, list[ItemRecord]]:
    """Run 12 slow images two at a time, `press` (Ctrl-C, or SIGTERM) `presses` times while
    the first two are under way; what the terminal showed, the exit code and the job's items."""
    ws = tmp_path / "ws"
    slower = {**SLOW, "latency_mean_s": 4.0}
    spec = write_spec(tmp_path, items=12, options=slower, limits={"concurrency": 2})
    with on_a_terminal(ws, "run", str(spec)) as child:
        child.expect(r"job (\S+): 12 images")
        assert isinstance(child.match, re.Match)
        job = child.match.group(1)
        wait_on(child, "two running items", lambda: len(running_items(ws, job)) == 2)
        press(child)
        child.expect(r"stopping( \(SIGTERM\))?: waiting for the 2 requests under way")
        if presses > 1:
            press(child)
        code = exit_code(child, "the stop", timeout=STOP_S + 4.0)
        output = received(child)
    return output, code, item_records(ws, job)


@pytest.mark.parametrize(
    ("press", "code"), [(_ctrl_c, 130), (_sigterm, 143)], ids=["ctrl-c", "sigterm"]
)
def test_a_first_stop_lets_the_requests_under_way_finish_and_starts_no_more(
    tmp_path: Path, press: Callable[[pexpect.spawn[str]], None], code: int
) -> None:
    """They may be billed: the first Ctrl-C (or SIGTERM, from `kill` or a service manager)
    keeps their images, then the run stops with that signal's exit code."""
    output, exited, items = _run_and_interrupt(tmp_path, presses=1, press=press)
    assert exited == code and "Traceback" not in output, output
    started = [item for item in items if item.attempts]
    assert [item.status for item in started] == ["completed", "completed"], output
    assert [attempt.outcome for item in started for attempt in item.attempts] == ["ok", "ok"]
    assert all(item.status == "pending" for item in items if not item.attempts)
    screen = final_screen(output)
    assert "resume" in "".join(screen[-3:])
    block = screen[screen.index(next(line for line in screen if "2/12" in line)) :]
    assert "stopped with 10 left: resume to go on" in block, block  # nothing waits, no ETA
    assert not any("ETA" in line or "waiting" in line for line in block), block


@pytest.mark.parametrize(
    ("press", "code"), [(_ctrl_c, 130), (_sigterm, 143)], ids=["ctrl-c", "sigterm"]
)
def test_a_second_stop_stops_at_once(
    tmp_path: Path, press: Callable[[pexpect.spawn[str]], None], code: int
) -> None:
    output, exited, items = _run_and_interrupt(tmp_path, presses=2, press=press)
    assert exited == code and "Traceback" not in output, output
    started = [item for item in items if item.attempts]
    assert [attempt.outcome for item in started for attempt in item.attempts] == [
        "interrupted",
        "interrupted",
    ]
    assert all(item.status == "pending" for item in items)


# ---------------------------------------------------------------------- width


def test_the_live_display_leaves_no_redraws_behind_at_80_columns(tmp_path: Path) -> None:
    """A run with retries, backoffs and failures: its numbers line is at its widest, the live
    block can change height (a line on what waits comes and goes), failures print above it."""
    ws = tmp_path / "ws"
    spec = write_spec(
        tmp_path,
        items=100,
        options={"rate_500": 0.25, "reject_pattern": "number 1$"},  # img-1 always fails
        limits={"concurrency": 4, "timeout_s": 30, "max_attempts": 3},
    )
    with on_a_terminal(ws, "run", str(spec)) as child:
        code = exit_code(child, "its start", timeout=TIMEOUT_S)
        output = received(child)
    assert code == 3, output  # partial: img-1 failed

    assert "Traceback" not in output, output
    too_wide = [line for line in drawn_lines(output) if cell_len(line) > COLUMNS]
    assert not too_wide, f"{len(too_wide)} lines wider than {COLUMNS} columns: {too_wide[:3]}"

    screen = final_screen(output)
    failed = status(ws)["job"]["counts"]["failed"]
    assert failed >= 1
    shown = "\n".join(screen)
    bars = [line for line in screen if re.search(r"\b\d+/100\b", line)]
    assert len(bars) == 1, f"{len(bars)} bars left on the screen:\n{shown}"
    assert "100/100" in bars[0]
    assert sum(bool(re.match(r"\d+ done · ", line)) for line in screen) == 1, shown
    assert not any("waiting" in line for line in screen), shown  # nothing waits at the end
    # the pace line keeps its cost and clock at 80 columns, and "running" counts calls in
    # flight, never more than the concurrency (an image being saved is "saving")
    assert any(re.search(r"images/min · cost \$\d+\.\d+ · \S+ elapsed$", s) for s in screen)
    running = [int(n) for n in re.findall(r"(\d+) running", output)]
    assert running and max(running) <= 4, max(running)
    # the job line, each failure (folded to two lines at most), the bar block, the summary:
    # far fewer lines than the 100 images, let alone the hundreds of redraws
    assert len(screen) <= 20 + 3 * failed, shown


@pytest.mark.parametrize("width", [80, 40])
def test_the_live_block_fits_the_width_at_large_numbers(width: int) -> None:
    """10,000 images, thousands done, hundreds failed and waiting, a rate-limit wait, a cost."""
    from orchestrator.cli.display import JobDisplay  # inside: the module is new with the fix
    from orchestrator.events import (
        ItemCompleted,
        ItemFailed,
        ItemGenerated,
        ItemRetrying,
        ItemStarted,
    )
    from orchestrator.states import ItemStatus
    from orchestrator.tally import Tally

    now = 1_800_000_000.0
    job = "a-long-job-key-for-a-big-batch-0f3a9c"
    pending = {f"img-{n}": ItemStatus.PENDING for n in range(10_000)}
    tally = Tally(job_id=job, total=10_000, statuses=pending, since=now - 3 * 3600)
    seq = 0

    def apply(model: Any, n: int, status: str, ts: float, **fields: Any) -> None:
        nonlocal seq
        seq += 1
        item = f"img-{n}"
        tally.apply(model(seq=seq, ts=ts, job_id=job, item_id=item, status=status, **fields))

    for n in range(8_765):
        ts = now - 3 * 3600 + n
        apply(ItemStarted, n, "running", ts, attempt=1, retry=n % 3 == 0)
        if n < 7_654:
            size = {"bytes": 1, "width": 1, "height": 1}
            apply(ItemGenerated, n, "running", ts, cost_usd=0.04 if n % 50 else None, **size)
            apply(ItemCompleted, n, "completed", ts, image_path="x.jpg")
        elif n < 8_700:
            apply(ItemFailed, n, "failed", ts, kind="unavailable", message="500")
    for n in range(8_765, 8_900):  # the provider said: come back in 15 s
        apply(ItemRetrying, n, "pending", now - 1, kind="rate_limited", message="429", delay_s=15.0)

    out = io.StringIO()
    console = Console(width=width, file=out, force_terminal=True, color_system=None)
    display = JobDisplay(tally, io.StringIO(), live=False, now=lambda: now, width=width)
    console.print(display.render())
    lines = [ANSI.sub("", line) for line in out.getvalue().splitlines()]

    assert any("8700/10000" in line for line in lines), lines
    assert any(line.startswith("7654 done · 65 running · 135 waiting") for line in lines), lines
    assert any(line.startswith("waiting 14 s") for line in lines), lines
    wide = [line for line in lines if cell_len(line) > width]
    assert not wide, wide


# ------------------------------------------------------------------ hang-up


def test_a_run_whose_terminal_closes_stops_in_order_and_stays_resumable(tmp_path: Path) -> None:
    """An ssh session that drops or a window that closes: the pty hangs up and the kernel
    sends SIGHUP. The run stops as on SIGTERM (exit 129, items in flight back to pending, the
    lock released), and says so in its log file, the one place left to read. Before, SIGHUP
    killed it on the spot, leaving its items running as after a crash."""
    ws, log = tmp_path / "ws", tmp_path / "run.log"
    spec = write_spec(tmp_path, items=12, options=SLOW, limits={"concurrency": 2})
    code, seen = _hang_up_during(ws, "--log-file", str(log), "run", str(spec))
    assert code == 129, seen
    job = _stopped_in_order(ws)
    said = log.read_text()
    assert f"stopped: its terminal closed (SIGHUP); `imagebatch resume {job}` continues it" in said
    assert "Traceback" not in said


def test_the_terminal_ui_whose_terminal_closes_stops_its_jobs_in_order(tmp_path: Path) -> None:
    """The same hang-up under `imagebatch tui SPEC`: it quits as `q` does (exit 129), and the
    job it ran stays resumable. Before, it died on the signal, its items left running."""
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path, items=12, options=SLOW, limits={"concurrency": 2})
    code, seen = _hang_up_during(ws, "tui", str(spec))
    assert code == 129, seen
    _stopped_in_order(ws)


def test_the_terminal_ui_asked_to_stop_by_sigterm_keeps_the_requests_under_way(
    tmp_path: Path,
) -> None:
    """`kill PID` of `imagebatch tui SPEC` quits as `q` does: the two requests under way
    finish and are kept, the terminal gets its screen back, exit 143. Before, the signal killed
    it where it stood, its screen left on the terminal and its items left running."""
    ws = tmp_path / "ws"
    slower = {**SLOW, "latency_mean_s": 3.0}
    spec = write_spec(tmp_path, items=12, options=slower, limits={"concurrency": 2})
    with on_a_terminal(ws, "tui", str(spec)) as child:
        wait_on(child, "two running items", lambda: len(running_items_of_any_job(ws)) == 2)
        child.kill(signal.SIGTERM)
        code = exit_code(child, "SIGTERM", timeout=STOP_S + 3.0)
        output = received(child)
    assert code == 143, output
    assert LEAVE_ALTERNATE_SCREEN in output, "the app's screen was left on the terminal"
    job = only_job_id(ws)
    assert job is not None
    started = [item for item in item_records(ws, job) if item.attempts]
    assert [item.status for item in started] == ["completed", "completed"]
    assert all(item.status == "pending" for item in item_records(ws, job) if not item.attempts)


def _hang_up_during(ws: Path, *args: str) -> tuple[int, str]:
    """Run `python -m orchestrator --workspace ws args...` with a pty as its controlling
    terminal, close the terminal once an image is in flight; its exit code and what it drew."""
    command = [sys.executable, "-m", "orchestrator", "--workspace", str(ws), *args]
    pid, terminal = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        try:
            os.chdir(ws.parent)
            os.execve(sys.executable, command, _pty_env())
        finally:
            os._exit(127)  # never back into the test runner's code
    seen = b""
    try:
        deadline = time.monotonic() + WAIT_S
        while not running_items_of_any_job(ws):
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            if select.select([terminal], [], [], 0.05)[0]:
                seen += os.read(terminal, 65536)
        os.close(terminal)  # the terminal closes: the kernel hangs it up
        terminal = -1
        _, status_code = os.waitpid(pid, 0)
        pid = 0
    finally:
        if terminal >= 0:
            os.close(terminal)
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status_code), seen.decode(errors="replace")


def _stopped_in_order(ws: Path) -> str:
    """The workspace's job, checked to be stopped as an interrupt stops it (pending, nothing
    left running), then resumed to the end."""
    job = only_job_id(ws)
    assert job is not None
    data = status(ws, job)
    assert data["job"]["status"] == "pending"
    assert "running" not in [item["status"] for item in data["items"]]
    final = json.loads(ok(cli(ws, "resume", job, "--json")))
    assert final["job"]["status"] == "completed"
    return job


def running_items_of_any_job(ws: Path) -> list[str]:
    """The running items of the workspace's one job, once there is one."""
    job = only_job_id(ws)
    return running_items(ws, job) if job else []


def test_under_nohup_a_hang_up_does_not_stop_the_run(tmp_path: Path) -> None:
    """`nohup imagebatch run ...` ignores SIGHUP before the program starts: the program keeps
    that choice, and the run goes on to the end."""
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path, items=6, options=SLOW, limits={"concurrency": 2})
    running = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "--workspace", str(ws), "run", str(spec)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),  # what nohup does
    )
    try:
        wait_for("an image in flight", lambda: running_items_of_any_job(ws), running)
        running.send_signal(signal.SIGHUP)
        assert running.wait(timeout=TIMEOUT_S) == 0
    finally:
        running.kill()
    job = only_job_id(ws)
    assert job is not None
    assert status(ws, job)["job"]["status"] == "completed"

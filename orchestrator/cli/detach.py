"""`run SPEC --detach` and `start JOB --detach`: run a recorded job in a background process.

The background process is `imagebatch start JOB` in a session of its own (Ctrl-C in this
terminal does not reach it, and it outlives this command), with its output appended to
`<workspace>/logs/<job-id>.log`. This command waits only until that process holds the job's
lock (a second or so), so that `watch`, `status`, the TUI and the notebook see a running job
at once, then prints the job id and returns.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from ..errors import ConfigError
from ..handle import JobHandle
from ..states import JOB_TERMINAL
from ..storage import Workspace, make_folders
from .context import Context
from .report import job_json

__all__ = ["detach", "log_path"]

STARTED_WITHIN_S = 20.0
"""How long to wait for the background process to take the job up."""
POLL_S = 0.1


def log_path(workspace: Workspace, job_id: str) -> Path:
    """Where a detached run of the job writes its output."""
    return workspace.root / "logs" / f"{job_id}.log"


async def detach(ctx: Context, handle: JobHandle, args: argparse.Namespace) -> int:
    """Start the job in a background process; print its id (or JSON) once it runs there."""
    job = await handle.status()
    if job.status in JOB_TERMINAL:
        raise ConfigError(
            f"job {job.id} has finished ({job.status}); nothing to start: retry its failed or "
            "cancelled items to run them again"
        )
    await handle.orchestrator.preflight(job)  # a missing key: said here, not in a log file
    log = log_path(ctx.workspace, job.id)
    proc = await asyncio.to_thread(_spawn, _command(ctx, args, job.id), ctx.workspace.root, log)
    code = await _taken_up(handle, proc)
    if code is not None:
        ctx.note(f"job {job.id}: the background process stopped (exit {code}); see {log}")
        return code
    if args.json:
        document = {**job_json(await handle.status(), ctx.workspace), "pid": proc.pid}
        ctx.say(json.dumps({**document, "log": str(log)}, indent=2))
    else:
        ctx.note(
            f"job {job.id}: running in the background (pid {proc.pid}), output in {log}; "
            f"`imagebatch watch {job.id}` follows it"
        )
        ctx.say(job.id)
    return 0


def _command(ctx: Context, args: argparse.Namespace, job_id: str) -> list[str]:
    command = [sys.executable, "-m", "orchestrator", "--workspace", str(ctx.workspace.root)]
    command += ["--no-progress", "--stale-after", str(ctx.stale_after_s)]
    if args.verbose:
        command.append("-" + "v" * args.verbose)
    if args.log_file:
        command += ["--log-file", str(Path(args.log_file).resolve())]
    return [*command, "start", job_id]


def _spawn(command: list[str], root: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start `command` in a session of its own, its output appended to `log` (below the
    workspace `root`: no symbolic link on the way, or at the log itself, is followed)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        make_folders(root, log.parent)
        fd = os.open(log, flags, 0o666)  # O_NONBLOCK: a FIFO there fails (ENXIO), never waits
    except PermissionError as error:  # make_folders: a link on the way, said in full
        raise ConfigError(str(error)) from None
    except OSError as error:  # ELOOP: a link planted at the log itself; ENXIO: a FIFO
        raise ConfigError(
            f"cannot write {log} ({error.strerror}); remove it and run again"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO with a reader, a device
        os.close(fd)
        raise ConfigError(f"cannot write {log}: not a regular file; remove it and run again")
    with open(fd, "ab") as out:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def _taken_up(handle: JobHandle, proc: subprocess.Popen[bytes]) -> int | None:
    """Wait until the background process runs the job (None), or its exit code if it stopped
    first without finishing it. Past `STARTED_WITHIN_S`, stop waiting (it may be slow)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTED_WITHIN_S
    while loop.time() < deadline:
        if await handle.runner_live():
            return None
        code = proc.poll()
        if code is not None:
            finished = (await handle.status()).status in JOB_TERMINAL
            return None if finished and code in (0, 3, 4) else code
        await asyncio.sleep(POLL_S)
    return None

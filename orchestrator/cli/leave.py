"""Leaving the `imagebatch` program at once when its command is done.

After the last image is recorded, a normal interpreter exit still joins the post-processing
pool's threads and worker processes, stops the fork server, runs every module's clean-up and
frees every object: half a second or more that nobody waits for. By then the command has closed
what holds data (the journal and the result cache in `Orchestrator.aclose`, the log file in
`logging_to`), so `exit_now` flushes the standard streams and the logging handlers and ends the
process with `os._exit`. Pool workers and the fork server notice their parent is gone and leave
(`worker_side.leave_with`), and remove the folder multiprocessing kept for it.

Only the program's entry point (`entry`, and `python -m orchestrator`) calls it: `main()`, which
tests and embedding code call, returns normally.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import stat
import sys
from collections.abc import Sequence
from typing import NoReturn

__all__ = [
    "EXIT_HUNG_UP",
    "EXIT_TERMINATED",
    "entry",
    "exit_now",
    "hung_up_stops",
    "leave_terminal",
]

EXIT_HUNG_UP = 129
"""The exit code after the terminal closed (SIGHUP), in the command line and the TUI."""
EXIT_TERMINATED = 143
"""The exit code after SIGTERM asked the command, or the TUI, to stop."""


def entry(argv: Sequence[str] | None = None) -> NoReturn:
    """The `imagebatch` program: run the command, then leave without tearing the interpreter
    down. A usage error or `--help` (SystemExit) and a crash leave the ordinary way."""
    from . import main

    exit_now(main(argv))


def exit_now(code: int) -> NoReturn:
    """Flush stdout, stderr and the logging handlers, do what multiprocessing would do at exit
    that leaves something behind otherwise (`workers.before_exit`), then end the process with
    `code`."""
    from ..workers import before_exit

    before_exit()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that left, or a closed stream
            stream.flush()
    os._exit(code)


def leave_terminal() -> None:
    """The terminal closed (an ssh session that dropped, a window closed): what was written to
    it goes to the null device from now on, so the orderly stop is not broken by writes that
    fail (EIO). Output sent to a file or a pipe stays where it was. (A terminal that hung up is
    no tty to `isatty` any more, but still a character device.)"""
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):  # not sys.stdout's: the live display may stand in for it
            with contextlib.suppress(OSError):
                if stat.S_ISCHR(os.fstat(fd).st_mode):
                    os.dup2(null, fd)
    finally:
        os.close(null)


def hung_up_stops() -> bool:
    """Whether a closed terminal (SIGHUP) should stop the program in order: not where the
    signal is ignored (`nohup`), nor where there is none (Windows)."""
    hang_up = getattr(signal, "SIGHUP", None)
    return hang_up is not None and signal.getsignal(hang_up) is not signal.SIG_IGN

"""What runs in a worker process of `workers`: leaving with the parent, and serving calls on a
pipe. Workers unpickle these by reference, so this module imports only the standard library.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import threading
import time
from multiprocessing.connection import Connection

from .pids import ended

__all__ = ["WATCH_PARENT_S", "leave_with", "serve"]

WATCH_PARENT_S = 1.0
"""How often a worker looks whether its parent is still there."""


def leave_with(parent: int, parent_tmp: str) -> None:
    """In a worker process: exit soon after `parent` is gone (even killed with SIGKILL), so no
    worker, and so no fork server, outlives the process it worked for. Ctrl-C, and a Jupyter
    kernel's interrupt or shutdown, reach the whole process group: they are for the parent,
    which stops its workers itself, so a worker ignores SIGINT.

    `parent_tmp` is the parent's multiprocessing folder (`pymp-*`, where the fork server
    listens). The parent removes it as it exits; a parent killed with SIGKILL cannot, so the
    worker that sees it gone does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while not _gone(parent, parent_tmp):
            time.sleep(WATCH_PARENT_S)
        os._exit(0)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def serve(connection: Connection, parent: int, parent_tmp: str) -> None:
    """In a worker process: take a call (a function and its arguments, pickled) from
    `connection`, answer it with `(True, its result)` or `(False, what it raised)`, and so on
    until the pipe is closed."""
    leave_with(parent, parent_tmp)
    while True:
        try:
            call, args = pickle.loads(connection.recv_bytes())
        except (EOFError, OSError):  # closed by the parent, or by its death
            _closed(parent, parent_tmp)
            return
        try:
            answer = (True, call(*args))
        except BaseException as error:  # the caller's to handle; this worker takes the next
            answer = (False, error)
        try:
            data = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # an answer that cannot be pickled
            data = pickle.dumps((False, RuntimeError(f"its answer cannot be sent: {error!r}")))
        try:
            connection.send_bytes(data)
        except OSError:  # the parent closed the pipe as this call ran (its run stopped)
            _closed(parent, parent_tmp)
            return


def _closed(parent: int, parent_tmp: str) -> None:
    """The pipe is closed: by the parent, which goes on and removes its folder itself, or by
    its death (a parent killed with SIGKILL, or the `imagebatch` command, which leaves with
    `os._exit`), which cannot: then the worker does, as `leave_with`'s watch would, had the
    worker not ended first. A parent that died is seen ended within moments."""
    deadline = time.monotonic() + 2 * WATCH_PARENT_S
    while not _gone(parent, parent_tmp) and time.monotonic() < deadline:
        time.sleep(0.05)


def _gone(parent: int, parent_tmp: str) -> bool:
    """Whether `parent` has ended; if so, its folder is removed."""
    if not ended(parent):
        return False
    shutil.rmtree(parent_tmp, ignore_errors=True)
    return True

"""Whether a process on this host has ended: for lock holders (`locks`) and for the parent a
post-processing worker serves (`workers`). Kept free of heavy imports: workers load it."""

from __future__ import annotations

import os
import sys

__all__ = ["ended"]


def ended(pid: int) -> bool:
    """Whether process `pid` has ended: it does not exist, or it is a zombie (ended, not yet
    reaped by its parent: a process killed with SIGKILL under a parent that has not waited for
    it yet). A process of another user exists. On Windows, never (cannot tell safely: there,
    `os.kill(pid, 0)` would end the process)."""
    if pid <= 0:
        return True
    if sys.platform == "win32":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False  # no /proc (macOS): a zombie is seen once reaped

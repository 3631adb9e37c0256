"""CPU time of this process and of the processes it started, as they run.

A run stores its images in worker processes (see `orchestrator.storing`), so the process's own
CPU time (`getrusage`) misses part of the work. `getrusage(RUSAGE_CHILDREN)` does not help: it
counts only children that have ended and been waited for, and the workers live on (they are
the fork server's children, so not even this process's). On Linux, `/proc` gives each live
process below this one; elsewhere the figure is this process's alone.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

__all__ = ["tree_cpu_s"]

_PROC = Path("/proc")


def tree_cpu_s() -> tuple[float, float]:
    """User and system CPU seconds so far of this process and every live process below it."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    user, system = own.ru_utime, own.ru_stime
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in _descendants(os.getpid()):
        try:
            stat = (_PROC / str(pid) / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()  # after the command, which may hold spaces
        user += int(fields[11]) / ticks
        system += int(fields[12]) / ticks
    return user, system


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in (_PROC / str(pid) / "task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *_descendants(child)]
    return found

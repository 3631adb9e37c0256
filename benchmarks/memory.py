"""Resident memory of this process, in KB, from /proc/self/status (Linux) or getrusage.

`VmHWM` (the peak) belongs to the process's own address space, so it starts afresh at `exec`;
`ru_maxrss` does not always (after a `vfork`, Linux can carry the parent's peak into the
child), so it is only the fallback. `reset_peak` lowers `VmHWM` to the current size, which lets
a measurement ignore the peak reached while importing.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

__all__ = ["peak_kb", "reset_peak", "rss_kb"]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_RESET_PEAK = "5"
"""Written to `clear_refs`, resets `VmHWM` to the current RSS (Linux 4.0 and later)."""


def rss_kb() -> int:
    """The current resident set size (the peak so far where /proc is missing)."""
    value = _status_field("VmRSS")
    return value if value is not None else _ru_maxrss_kb()


def peak_kb() -> int:
    """The largest resident set size since start, or since the last `reset_peak`."""
    value = _status_field("VmHWM")
    return value if value is not None else _ru_maxrss_kb()


def reset_peak() -> bool:
    """Make the peak start again from now; False where the system does not allow it."""
    try:
        _CLEAR_REFS.write_text(_RESET_PEAK)
    except OSError:
        return False
    return _status_field("VmHWM") is not None


def _status_field(name: str) -> int | None:
    try:
        lines = _STATUS.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key == name:
            return int(value.split()[0])  # "  123456 kB"
    return None


def _ru_maxrss_kb() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KB elsewhere

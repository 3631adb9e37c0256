"""How the app words things: statuses, error reasons, ages, latencies, costs.

Numbers are formatted as the CLI formats them (`format_duration`, `format_cost`), so a job reads
the same in both front ends.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

from orchestrator import ItemStatus, JobStatus
from orchestrator.wording import format_cost, format_duration, format_latency, reason

__all__ = [
    "STATUS_STYLES",
    "format_age",
    "format_cost",
    "format_duration",
    "format_latency",
    "reason",
    "shown_path",
    "status_text",
]

STATUS_STYLES: dict[str, str] = {
    ItemStatus.PENDING: "dim",
    ItemStatus.RUNNING: "cyan",
    ItemStatus.COMPLETED: "green",
    ItemStatus.FAILED: "red",
    ItemStatus.CANCELLED: "yellow",
    JobStatus.PARTIAL: "yellow",
    "stopped": "yellow",  # a running job nobody runs any more (the jobs table says so)
}


def status_text(status: str) -> Text:
    """A status word in its colour."""
    return Text(str(status), style=STATUS_STYLES.get(status, ""))


def format_age(seconds: float) -> str:
    """How long ago: `just now`, `42s ago`, `5m ago`, `3h ago`, `2d ago`."""
    seconds = max(0.0, seconds)
    if seconds < 5:
        return "just now"
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def shown_path(path: Path) -> str:
    """A path as a person wants to read it: relative to the current folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd())) or "."
    except ValueError:
        return str(path)

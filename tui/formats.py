"""How the app words things: statuses, error reasons, ages, latencies, costs.

Numbers are formatted as the CLI formats them (`format_duration`, `format_cost`), so a job reads
the same in both front ends.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

from orchestrator import ItemStatus, JobStatus
from orchestrator.cli.display import format_cost, format_duration

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
}

REASONS: dict[str, str] = {
    "rate_limited": "rate limited",
    "unavailable": "server error",
    "timeout": "timed out",
    "bad_response": "not an image",
    "content_rejected": "refused: moderation",
    "invalid_request": "request refused",
    "auth": "API key refused",
    "interrupted": "process stopped",
    "postprocess": "post-process failed",
}


def status_text(status: str) -> Text:
    """A status word in its colour."""
    return Text(str(status), style=STATUS_STYLES.get(status, ""))


def reason(kind: str | None) -> str:
    """An error kind in a few words (`unavailable` -> `server error`); the message itself is
    in the preview and the log."""
    if not kind:
        return ""
    return REASONS.get(kind, kind.replace("_", " "))


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


def format_latency(seconds: float | None) -> str:
    """An attempt's time, `1.23s`; a dash when there is none."""
    return "-" if seconds is None else f"{seconds:.2f}s"

"""Errors in words: what went wrong and what to do, shown as a notification, never a traceback.

The core's messages say what is wrong in the user's terms; `advice` adds what to do about it in
this app (the key to press, the command to type elsewhere). `reported` wraps the work of a
key press so that whatever it raises becomes such a notification.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from textual.app import App
from textual.notifications import SeverityLevel
from textual.widget import Widget

from orchestrator import ConfigError, ImageBatchError, KeyConflictError, LeaseLostError
from orchestrator.errors import JournalError, StorageError

__all__ = ["advice", "reported"]

_log = logging.getLogger(__name__)


Notifier = Widget | App[Any]
"""Anything that can show a notification (the app, a screen, a widget)."""


def advice(error: BaseException) -> str:
    """What went wrong and what to do, in a sentence or two."""
    text = str(error)
    if isinstance(error, KeyConflictError):
        if error.live:
            return (
                f"{text}. Open job {error.job_id} from the list to follow or cancel it; if its "
                f"process is gone, run `imagebatch clear-lock {shlex.quote(error.key)}`."
            )
        return f"{text}. Open job {error.job_id} from the list to resume or cancel it."
    if isinstance(error, LeaseLostError):
        return (
            f"{text}. Another process took job {error.job_id} over, or its lock was cleared: "
            "this app stopped running it and writes nothing more for it. Open it from the list "
            "to see where it stands; retry or resume it once the other process has finished."
        )
    if isinstance(error, ConfigError) and error.option == "provider":
        return (
            f"{text}. To use this provider, quit, set the key in the environment and start "
            "`imagebatch tui` again; or choose the mock provider."
        )
    if isinstance(error, StorageError):
        return (
            f"{text}, then open the job from the list and resume it (s). It stopped at once: "
            "every image it recorded is kept."
        )
    if isinstance(error, JournalError):
        return f"The workspace's journal refused the change: {text}"
    if isinstance(error, ImageBatchError):
        return text
    return f"Unexpected error ({type(error).__name__}): {text}. The app goes on; try again."


@contextmanager
def reported(where: Notifier, doing: str) -> Iterator[None]:
    """Run a block; an error it raises becomes a notification saying what to do."""
    try:
        yield
    except ImageBatchError as error:
        severity: SeverityLevel = "warning" if isinstance(error, ConfigError) else "error"
        where.notify(advice(error), title=f"Could not {doing}", severity=severity, timeout=10)
    except Exception as error:
        _log.exception("unexpected error while trying to %s", doing)
        where.notify(advice(error), title=f"Could not {doing}", severity="error", timeout=10)

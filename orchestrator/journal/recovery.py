"""What a run finds of a dead one: the items it left running, and what becomes of them.

Each goes back to pending with its open attempt closed as interrupted (it may have been billed),
or to cancelled if a cancel was asked for it. A death with an item in flight counts against the
item: it may be what kills the process (an image that crashes its decoder, say), and the third
such death ends it failed ("crash loop") until a retry. A death while the run was stopping (its
requests let finish after Ctrl-C, SIGTERM or `stop`) is the stop's, not the image's: a service
manager's SIGKILL once its grace period ends.
"""

from __future__ import annotations

from ..events import ItemCancelled, ItemFailed, ItemReset
from ..records import ErrorInfo, ItemRecord
from ..states import ItemStatus
from .budget import released
from .commit import Change, attempt_ended

__all__ = ["CRASH_LIMIT", "recovered"]

CRASH_LIMIT = 3
"""Runs that may die with an item in flight before it ends failed ("crash loop")."""


def recovered(item: ItemRecord, now: float, *, stopping: bool) -> Change:
    """The change for an item a dead run left running; `stopping`: that run was stopping."""
    freed = released(item, maybe_billed=True)  # the process died: it may have been billed
    if item.cancel_requested:
        attempts = attempt_ended(item, now, "cancelled")
        fields = {"attempts": attempts, **freed}
        return Change(item, ItemCancelled, ItemStatus.CANCELLED, fields)
    crashes = item.crashes + (not stopping)
    if crashes >= CRASH_LIMIT:  # it may be what kills the process: not tried again
        error = ErrorInfo(
            kind="crash_loop",
            message=f"the process died {crashes} times while this image was in flight; "
            "not tried again (retry it to try once more)",
        )
        attempts = attempt_ended(item, now, "error", error)
        fields = {"attempts": attempts, "crashes": crashes, "error": error, **freed}
        said = {"kind": error.kind, "message": error.message}
        return Change(item, ItemFailed, ItemStatus.FAILED, fields, said)
    attempts = attempt_ended(item, now, "interrupted")
    fields = {"attempts": attempts, "crashes": crashes, **freed}
    return Change(item, ItemReset, ItemStatus.PENDING, fields, {"reason": "interrupted"})

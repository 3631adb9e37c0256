"""Items parked until the items they reference end: which wait, and for which.

A runner parks an item whose references are unfinished. When one of those runs in the same
runner, its end wakes the item; when none does (another process retried it, say), the runner
looks at the item again every poll. Plain bookkeeping, no I/O and no timers: the runner owns
those.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Parking"]


class Parking:
    """The parked items of one runner and the items each waits for."""

    def __init__(self) -> None:
        self.blocked: dict[str, tuple[str, ...]] = {}
        """Parked items, and the items each waits for."""
        self._waiters: dict[str, set[str]] = {}
        """For an item others wait for: those items (they look again when it ends)."""

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.blocked

    def __bool__(self) -> bool:
        return bool(self.blocked)

    def park(self, item_id: str, on: tuple[str, ...], here: Callable[[str], bool]) -> bool:
        """Hold the item until one of the items in `on` ends. True if one of them is `here`
        (its end wakes the item); False if none is, and the caller looks again later."""
        self.blocked[item_id] = on
        woken_by = [dep for dep in on if here(dep)]
        for dep in woken_by:
            self._waiters.setdefault(dep, set()).add(item_id)
        return bool(woken_by)

    def woken(self, item_id: str) -> list[str]:
        """`item_id` ended: the items waiting for it, in a stable order."""
        return sorted(self._waiters.pop(item_id, ()))

    def release(self, item_id: str) -> bool:
        """Unpark the item; False if it was not parked (dropped or released meanwhile)."""
        return self.blocked.pop(item_id, None) is not None

    def clear(self) -> None:
        self.blocked.clear()
        self._waiters.clear()

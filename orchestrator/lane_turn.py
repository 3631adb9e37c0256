"""`Turn`: one attempt's turn on a provider lane (see `lane.py`), what `Lane.turn()` yields.

The attempt tells its turn how the provider answered (`succeeded`, `rate_limited`,
`unavailable`) and the turn hands that to its lane, with when the attempt started and how many
were under way: an adaptive lane grows or shrinks on it, and the breaker counts outages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .lane import Lane

__all__ = ["Turn"]


class Turn:
    """One attempt's turn on a lane (what `Lane.turn()` gives): tell it how the attempt went."""

    __slots__ = ("_lane", "cuts", "level", "started")

    def __init__(self, lane: Lane, cuts: int, level: int, started: float) -> None:
        self._lane = lane
        self.started = started
        """The loop's time when the attempt started."""
        self.cuts = cuts
        """The adaptive limit's cuts when the attempt started."""
        self.level = level
        """Attempts under way on the lane when it started, itself included."""

    def succeeded(self) -> None:
        """The provider answered with an image: an adaptive lane may grow."""
        self._lane._succeeded(self)

    def rate_limited(self, wait_s: float) -> None:
        """The provider answered 429: no turn starts for `wait_s`, and an adaptive lane shrinks."""
        self._lane._rate_limited(self, wait_s)

    def unavailable(self) -> None:
        """The provider looks down (5xx, connection failed): counts towards the breaker."""
        self._lane._unavailable(self)

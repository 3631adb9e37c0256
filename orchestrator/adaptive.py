"""`AdaptiveLimit`: how many attempts a provider takes at once, learnt from its 429s.

`limits.concurrency: "auto"` gives a lane one of these. It is additive increase, multiplicative
decrease (AIMD, as TCP does it), in rounds: a *round* is `limit` successful attempts, about one
attempt's time with the lane full.

    slow start   from `start`, +1 per success: the limit doubles every round, until the first 429
    a 429        halves the limit, once per overload: the 429s of attempts that started before the
                 cut are the same overload and cut nothing more. The level that drew it (how many
                 attempts were under way when it started) is too many: one fewer is `good`
    recovery     below `good`, +1 per success again (back in about one round)
    probing      at `good`, wait `patience` rounds before trying one more; a 429 on that try
                 doubles the patience (up to 32), so a hard cap costs few 429s; a try that holds
                 for a round becomes the new `good`, and growth goes on +1 per round
    slowness     changes nothing: only 429s shrink the limit (images that take 60 s are normal);
                 timeouts and server errors neither grow nor shrink it

The limit only grows on a success while the lane is full (every slot taken): a limit that is
not used has not been shown to work. It never goes above `maximum` nor below 1.

Pure: no I/O, no clock, no event loop. The lane feeds it each attempt's outcome and reads `limit`.
"""

from __future__ import annotations

__all__ = ["AdaptiveLimit"]

START = 4
"""The first limit (or the maximum, when that is lower)."""
MAX_PATIENCE = 32
"""The most rounds it waits at `good` before trying one more."""


class AdaptiveLimit:
    """A concurrency limit that grows while attempts succeed and halves on a 429."""

    def __init__(self, maximum: int, *, start: int = START) -> None:
        if maximum < 1:
            raise ValueError(f"maximum must be at least 1, not {maximum}")
        if start < 1:
            raise ValueError(f"start must be at least 1, not {start}")
        self.maximum = maximum
        self.limit = min(start, maximum)
        self.good: int | None = None
        """The highest level believed to draw no 429; None until the first 429 (slow start)."""
        self.patience = 1
        """Rounds to wait at `good` before trying one more."""
        self.cuts = 0
        """How many times a 429 halved the limit. An attempt notes it when it starts; a 429 of
        an attempt that started before the last cut cuts nothing more."""
        self._successes = 0
        """Successes counted towards the next +1 while probing."""

    @property
    def slow_start(self) -> bool:
        """No 429 seen yet: the limit doubles every round."""
        return self.good is None

    def on_success(self, *, full: bool = True) -> int:
        """An attempt succeeded; `full`: every slot was taken as it ended. The new limit."""
        if not full:
            return self.limit
        if self.good is None or self.limit < self.good:
            ceiling = self.maximum if self.good is None else self.good
            self.limit = min(ceiling, self.limit + 1)
            return self.limit
        self._successes += 1
        rounds = self.patience if self.limit == self.good else 1
        if self._successes >= self.limit * rounds:
            self._successes = 0
            if self.limit > self.good:  # the try held for a round: a new good level
                self.good, self.patience = self.limit, 1
            self.limit = min(self.maximum, self.limit + 1)
        return self.limit

    def on_rate_limited(self, *, cuts_at_start: int, level: int) -> int:
        """An attempt got a 429. `cuts_at_start`: `cuts` when it started; `level`: attempts under
        way (itself included) as it started or as the 429 came, whichever were more. The new
        limit."""
        if cuts_at_start < self.cuts:
            return self.limit  # part of an overload already answered with a cut
        too_many = max(1, min(level, self.limit))
        if self.good is not None and too_many > self.good:
            self.patience = min(MAX_PATIENCE, self.patience * 2)  # a try above `good` failed
        self.good = max(1, too_many - 1)
        self.limit = max(1, min(self.limit // 2, self.good))
        self.cuts += 1
        self._successes = 0
        return self.limit

    def set_maximum(self, maximum: int) -> int:
        """Grow to at most `maximum` from now on (the lane's jobs changed). The new limit."""
        if maximum < 1:
            raise ValueError(f"maximum must be at least 1, not {maximum}")
        self.maximum = maximum
        self.limit = min(self.limit, maximum)
        if self.good is not None:
            self.good = min(self.good, maximum)
        return self.limit

    def __repr__(self) -> str:
        phase = "slow start" if self.good is None else f"good {self.good}, patience {self.patience}"
        return f"<AdaptiveLimit {self.limit} of at most {self.maximum}: {phase}, {self.cuts} cuts>"

"""A provider lane's circuit breaker: when the provider looks down, stop calling it.

After `after` attempts in a row fail in a way that says the provider is down (5xx, a refused or
reset connection: `UnavailableError`), the lane starts no attempt for a cool-down, then lets one
attempt through (the probe). A probe that fails doubles the cool-down, up to `max_s`; any answer
(an image, a 429, a refusal) closes the breaker. So an outage of T seconds costs about
`after` + the calls already under way + log2(T) probes, not every item's every attempt.

    closed    --`after` failures in a row-->  open: no start for `first_s`
    open      --the cool-down ends-->         probing: one attempt at a time
    probing   --the probe fails-->            open again, for twice as long
    any       --the provider answers-->       closed

Pure: the caller passes the time (the lane uses its loop's clock) and turns "open" into its own
cool-down and "probing" into a single slot. An attempt that started before the breaker opened
and fails afterwards was under way during the same outage: it does not count again.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Breaker"]


@dataclass
class Breaker:
    """The state of one lane's breaker (see the module's docstring)."""

    after: int = 5
    """Failures in a row that open it."""
    first_s: float = 1.0
    """The first cool-down."""
    max_s: float = 60.0
    """The longest cool-down."""
    failures: int = 0
    """Failures in a row while closed."""
    open_until: float | None = None
    """When the current cool-down ends; None while closed."""
    cooldown_s: float = 0.0
    """The current (or last) cool-down."""

    def __post_init__(self) -> None:
        if self.after < 1 or not 0 < self.first_s <= self.max_s:
            raise ValueError("a breaker needs after >= 1 and 0 < first_s <= max_s")

    @property
    def tripped(self) -> bool:
        """Open or probing: the lane runs one attempt at a time, after the cool-down."""
        return self.open_until is not None

    def failed(self, now: float, started_at: float) -> float | None:
        """An attempt started at `started_at` found the provider down at `now`: the cool-down
        that begins now, or None when the lane may go on as it is."""
        if self.open_until is None:
            self.failures += 1
            if self.failures < self.after:
                return None
            self.cooldown_s = self.first_s
        elif started_at >= self.open_until:  # the probe failed
            self.cooldown_s = min(self.cooldown_s * 2, self.max_s)
        else:
            return None  # under way before the breaker opened: counted already
        self.open_until = now + self.cooldown_s
        return self.cooldown_s

    def answered(self) -> bool:
        """The provider answered: close. True if the breaker was tripped until now."""
        was = self.tripped
        self.failures = 0
        self.open_until = None
        self.cooldown_s = 0.0
        return was

"""`LaneLimits`: what a provider lane allows (see `lane.py`), and how two jobs' limits combine."""

from __future__ import annotations

from dataclasses import dataclass

from .pacer import check_rate

__all__ = ["LaneLimits"]


@dataclass(frozen=True, slots=True)
class LaneLimits:
    """What a lane allows: slots at once, starts per minute (None: no limit), starts at once."""

    concurrency: int
    """Slots at once; when `adaptive`, the most the lane may grow to."""
    rate_per_minute: float | None
    burst: int = 1
    adaptive: bool = False
    """Learn how many slots the provider takes from its 429s, up to `concurrency`."""

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {self.concurrency}")
        check_rate(self.rate_per_minute, self.burst)

    def tighter(self, other: LaneLimits) -> LaneLimits:
        """The stricter of each limit (a rate of None is the loosest); adaptive if either is,
        up to the lower of the two concurrencies."""
        rates = [r for r in (self.rate_per_minute, other.rate_per_minute) if r is not None]
        return LaneLimits(
            concurrency=min(self.concurrency, other.concurrency),
            rate_per_minute=min(rates) if rates else None,
            burst=min(self.burst, other.burst),
            adaptive=self.adaptive or other.adaptive,
        )

"""What one run did, call by call, and the figures read off it.

A `Call` is one request to the provider: when it started, when its answer came (wall-clock,
`time.time()`, so the times of several processes compare) and what the answer was. Calls come
from the fake server's request log (HTTP runs), from the journal's attempts (imagebatch on the
mock: an attempt starts just before the call and ends once the image is stored and recorded) or
from a baseline's own notes. Pure functions of the calls.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator import ItemRecord

__all__ = [
    "IMAGE",
    "RATE_LIMITED",
    "Call",
    "Measures",
    "calls_from_items",
    "calls_from_log",
    "idle_gaps",
    "max_in_window",
    "measure",
]

IMAGE = "image"
RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class Call:
    """One request: started, answered (wall-clock seconds), and `image` or what went wrong."""

    start: float
    end: float
    outcome: str

    def as_json(self) -> list[Any]:
        return [self.start, self.end, self.outcome]

    @classmethod
    def from_json(cls, data: Sequence[Any]) -> Call:
        return cls(float(data[0]), float(data[1]), str(data[2]))


def calls_from_log(entries: Iterable[Mapping[str, Any]]) -> list[Call]:
    """The fake server's log entries that were answered (or left by their client)."""
    return sorted(
        (
            Call(entry["arrived"], entry["answered"], str(entry["outcome"]))
            for entry in entries
            if "answered" in entry
        ),
        key=lambda call: call.start,
    )


def calls_from_items(items: Iterable[ItemRecord]) -> list[Call]:
    """Every ended attempt of the items, from the journal; `ok` attempts count as images."""
    calls = []
    for item in items:
        for attempt in item.attempts:
            if attempt.ended_at is None:
                continue
            if attempt.outcome == "ok":
                outcome = IMAGE
            else:
                outcome = attempt.error.kind if attempt.error is not None else attempt.outcome
            calls.append(Call(attempt.started_at, attempt.ended_at, outcome))
    return sorted(calls, key=lambda call: call.start)


@dataclass(frozen=True)
class Measures:
    """Figures of one run's calls."""

    calls: int
    images: int
    rate_limited: int
    first_start: float
    last_end: float
    first_image: float | None
    """When the first image's answer came (None: no image)."""
    busy_s: float
    """Time spent in calls, summed over calls."""
    median_gap_s: float | None
    """Median wait between an answer and the next request that took its slot."""

    @property
    def span_s(self) -> float:
        """First request to last answer."""
        return self.last_end - self.first_start


def measure(calls: Sequence[Call]) -> Measures:
    if not calls:
        raise ValueError("a run with no calls has nothing to measure")
    images = [call.end for call in calls if call.outcome == IMAGE]
    gaps = idle_gaps(calls)
    return Measures(
        calls=len(calls),
        images=len(images),
        rate_limited=sum(call.outcome == RATE_LIMITED for call in calls),
        first_start=min(call.start for call in calls),
        last_end=max(call.end for call in calls),
        first_image=min(images, default=None),
        busy_s=sum(call.end - call.start for call in calls),
        median_gap_s=statistics.median(gaps) if gaps else None,
    )


def idle_gaps(calls: Sequence[Call]) -> list[float]:
    """For each request that reused a slot, how long that slot stood idle before it.

    Answers free slots, requests take them, first freed first taken: walking the calls' starts
    and ends in time order, each start takes the oldest slot freed and not yet taken. The first
    requests (no slot freed yet) and the answers no request follows (the tail) count no gap.
    """
    events = sorted([(call.end, 0) for call in calls] + [(call.start, 1) for call in calls])
    freed: deque[float] = deque()
    gaps = []
    for when, is_start in events:
        if not is_start:
            freed.append(when)
        elif freed:
            gaps.append(when - freed.popleft())
    return gaps


def max_in_window(times: Iterable[float], window_s: float) -> int:
    """The most of `times` that fall within any `window_s` seconds."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, when in enumerate(ordered):
        while when - ordered[first] >= window_s:
            first += 1
        most = max(most, last - first + 1)
    return most

"""Numbers about finished and running jobs, counted from the journal's records: how many images
succeeded, how many attempts and retries they took, why they failed, how long the provider took,
how fast and how dear the work was; and which jobs are stuck (`stuck.py`, re-exported here).

Pure: no I/O. The caller reads the records (`JobHandle.snapshot()`, the key's lock holder) and
passes the time in. The CLI's `imagebatch stats` prints what this computes; the TUI and the
notebook can show the same numbers.

The rules, so that anyone can count a job by hand and get the same numbers:

- *success rate*: completed items out of those that ended completed or failed (cancelled items
  are left out: a person stopped them, the provider did not fail them). None while none ended.
- *attempts*: every call made to the provider; *retries*: attempts started automatically after
  a failed one (not resumes, not explicit `retry`).
- *failures*: failed items by the kind of their error; *attempt errors*: failed attempts by kind
  (an item that failed twice and then succeeded counts twice here, not in *failures*).
- *latency*: per provider and model, the time of every attempt that got an answer (outcome `ok`
  or `error`; cancelled and interrupted attempts are left out). Percentiles by nearest rank: the
  p-th percentile of n sorted values is the value at rank ceil(p/100 * n), so it is always one
  of the measured times. The model is the job's, else the one the provider reported for the
  job's first image that has one, else `default`.
- *images per minute*: completed items per minute of run time (the time runners worked on the
  jobs, added over jobs).
- *cached*: items served from the result cache (`cached_from`), or completed without a paid
  attempt of their own.
- *stuck*: a job the journal says a runner works on (`active`) while no live process holds its
  key's lock: its heartbeat is older than the stale limit, or its process is gone.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .records import ItemRecord, JobRecord
from .states import ItemStatus
from .stuck import Stuck, stuck

__all__ = ["JobStats", "Latency", "Stats", "Stuck", "job_stats", "percentile", "stuck", "total"]

ANSWERED = frozenset({"ok", "error"})
"""Attempt outcomes whose time is the provider's answer time."""


def percentile(values: Sequence[float], p: float) -> float | None:
    """The `p`-th percentile of `values` by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Latency:
    """How long one provider and model took to answer."""

    provider: str
    model: str
    count: int
    p50_s: float | None
    p95_s: float | None
    max_s: float | None

    @classmethod
    def of(cls, provider: str, model: str, times: Sequence[float]) -> Latency:
        return cls(
            provider=provider,
            model=model,
            count=len(times),
            p50_s=percentile(times, 50),
            p95_s=percentile(times, 95),
            max_s=max(times) if times else None,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "count": self.count,
            "p50_s": self.p50_s,
            "p95_s": self.p95_s,
            "max_s": self.max_s,
        }


@dataclass(frozen=True)
class Stats:
    """The numbers of one job, or of several added together."""

    jobs: int
    items: int
    counts: dict[ItemStatus, int]
    attempts: int
    retries: int
    failures: dict[str, int]
    """Failed items by the kind of their error, the largest group first."""
    attempt_errors: dict[str, int]
    """Failed attempts by the kind of their error, the largest group first."""
    latency: list[Latency]
    run_s: float
    cost_usd: float
    unpriced: int
    """Images received whose cost is unknown (so `cost_usd` is a lower bound)."""
    cached: int
    times: dict[tuple[str, str], list[float]] = field(default_factory=dict, repr=False)
    """The answer times behind `latency`, kept so that stats can be added together."""

    def count(self, status: ItemStatus) -> int:
        return self.counts.get(status, 0)

    @property
    def success_rate(self) -> float | None:
        """Completed items out of those that ended completed or failed."""
        ended = self.count(ItemStatus.COMPLETED) + self.count(ItemStatus.FAILED)
        return self.count(ItemStatus.COMPLETED) / ended if ended else None

    @property
    def images_per_minute(self) -> float | None:
        """Completed items per minute of run time; None before any run time."""
        if self.run_s <= 0:
            return None
        return 60.0 * self.count(ItemStatus.COMPLETED) / self.run_s

    def as_json(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "items": self.items,
            "counts": {str(status): self.count(status) for status in ItemStatus},
            "success_rate": self.success_rate,
            "attempts": self.attempts,
            "retries": self.retries,
            "failures": dict(self.failures),
            "attempt_errors": dict(self.attempt_errors),
            "latency": [row.as_json() for row in self.latency],
            "run_s": self.run_s,
            "images_per_minute": self.images_per_minute,
            "cost_usd": self.cost_usd,
            "unpriced": self.unpriced,
            "cached": self.cached,
        }


@dataclass(frozen=True)
class JobStats:
    """One job's numbers, with the job they are about."""

    job: JobRecord
    stats: Stats


def job_stats(job: JobRecord, items: Iterable[ItemRecord], *, now: float) -> JobStats:
    """The numbers of `job` as its records stand at `now`."""
    items = list(items)
    provider, model = job.config.provider, _model_of(job, items)
    times: list[float] = []
    errors: Counter[str] = Counter()
    cost, unpriced = 0.0, 0
    for item in items:
        for attempt in item.attempts:
            if attempt.outcome in ANSWERED and attempt.ended_at is not None:
                times.append(max(0.0, attempt.ended_at - attempt.started_at))
            if attempt.outcome == "error":
                errors[attempt.error.kind if attempt.error else "error"] += 1
            if attempt.outcome == "ok":
                if attempt.cost_usd is None:
                    unpriced += 1
                else:
                    cost += attempt.cost_usd
    grouped = {(provider, model): times} if times else {}
    return JobStats(
        job,
        _stats(
            jobs=1,
            items=items,
            attempt_errors=errors,
            times=grouped,
            run_s=job.run_time(now),
            cost_usd=cost,
            unpriced=unpriced,
        ),
    )


def total(parts: Iterable[Stats]) -> Stats:
    """Several jobs' numbers added together (latency percentiles over every answer)."""
    parts = list(parts)
    counts: Counter[ItemStatus] = Counter()
    failures: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    times: dict[tuple[str, str], list[float]] = {}
    for part in parts:
        counts.update(part.counts)
        failures.update(part.failures)
        errors.update(part.attempt_errors)
        for group, values in part.times.items():
            times.setdefault(group, []).extend(values)
    return Stats(
        jobs=sum(part.jobs for part in parts),
        items=sum(part.items for part in parts),
        counts=dict(counts),
        attempts=sum(part.attempts for part in parts),
        retries=sum(part.retries for part in parts),
        failures=_largest_first(failures),
        attempt_errors=_largest_first(errors),
        latency=_latency(times),
        run_s=sum(part.run_s for part in parts),
        cost_usd=sum(part.cost_usd for part in parts),
        unpriced=sum(part.unpriced for part in parts),
        cached=sum(part.cached for part in parts),
        times=times,
    )


def _stats(
    *,
    jobs: int,
    items: list[ItemRecord],
    attempt_errors: Counter[str],
    times: dict[tuple[str, str], list[float]],
    run_s: float,
    cost_usd: float,
    unpriced: int,
) -> Stats:
    failures = Counter(
        item.error.kind if item.error else "failed"
        for item in items
        if item.status == ItemStatus.FAILED
    )
    return Stats(
        jobs=jobs,
        items=len(items),
        counts=dict(Counter(item.status for item in items)),
        attempts=sum(item.attempt_count for item in items),
        retries=sum(item.retries for item in items),
        failures=_largest_first(failures),
        attempt_errors=_largest_first(attempt_errors),
        latency=_latency(times),
        run_s=run_s,
        cost_usd=cost_usd,
        unpriced=unpriced,
        cached=sum(1 for item in items if _cached(item)),
        times=times,
    )


def _cached(item: ItemRecord) -> bool:
    """Served from the result cache, or completed without a paid attempt of its own (as the
    TUI's `ItemRow.cached` says)."""
    paid = any(attempt.outcome == "ok" for attempt in item.attempts)
    return item.cached_from is not None or (item.status == ItemStatus.COMPLETED and not paid)


def _model_of(job: JobRecord, items: list[ItemRecord]) -> str:
    if job.config.model:
        return job.config.model
    return next((item.model for item in items if item.model), "default")


def _latency(times: dict[tuple[str, str], list[float]]) -> list[Latency]:
    return [
        Latency.of(provider, model, times[provider, model]) for provider, model in sorted(times)
    ]


def _largest_first(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda pair: (-pair[1], pair[0])))

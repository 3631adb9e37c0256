"""The speed benchmark's figures: per seed, per scenario (means over seeds), ratios to the bound.

A `SeedResult` holds what each variant did on one seed's draws and the bound those draws allow;
a `ScenarioResult` averages ratios over its seeds. Every ratio divides a makespan by the LB of
the same draws (see `bound`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from .bound import fifo_makespan, fixed_batch_makespan
from .speed_plan import Scenario
from .speed_runs import Outcome
from .timeline import RATE_LIMITED, Measures, max_in_window, measure

__all__ = ["ScenarioResult", "SeedResult", "seed_result"]

WINDOW_MODEL_S = 60.0
"""The quota window, in model seconds."""


@dataclass(frozen=True)
class SeedResult:
    """Every variant of one scenario on one seed."""

    seed: int
    bound_s: float
    fifo_s: float
    """The ideal in-order schedule on these draws (no overhead, no faults)."""
    fixed_ideal_s: float
    """The ideal fixed-batch schedule on these draws."""
    measures: dict[str, Measures]
    process_s: float
    """imagebatch, spawn of its (first) process to exit of its (last)."""
    spawned: float
    exit_codes: tuple[int, ...]
    most_starts: int
    """imagebatch's most requests in any quota window (60 model seconds)."""
    most_429s: int
    """imagebatch's most 429 answers in any quota window."""

    @property
    def imagebatch(self) -> Measures:
        return self.measures["imagebatch"]

    def span_ratio(self, variant: str = "imagebatch") -> float | None:
        found = self.measures.get(variant)
        return None if found is None else found.span_s / self.bound_s

    @property
    def first_request_s(self) -> float:
        return self.imagebatch.first_start - self.spawned

    @property
    def first_image_s(self) -> float | None:
        first = self.imagebatch.first_image
        return None if first is None else first - self.spawned


def seed_result(scenario: Scenario, seed: int, outcomes: list[Outcome]) -> SeedResult:
    latencies = scenario.latencies(seed)
    slots = scenario.slots * scenario.processes
    if scenario.cap is not None:
        slots = min(slots, scenario.cap)
    ours = outcomes[0]
    assert ours.spawned is not None and ours.exited is not None
    window = WINDOW_MODEL_S * scenario.model_s
    return SeedResult(
        seed=seed,
        bound_s=scenario.bound(seed),
        fifo_s=fifo_makespan(
            latencies,
            slots,
            rate_per_minute=scenario.per_minute(
                scenario.quota_per_model_min or scenario.rate_per_model_min
            ),
            burst=scenario.quota_burst,
        ),
        fixed_ideal_s=fixed_batch_makespan(latencies, slots),
        measures={outcome.variant: measure(outcome.calls) for outcome in outcomes},
        process_s=ours.exited - ours.spawned,
        spawned=ours.spawned,
        exit_codes=ours.exit_codes,
        most_starts=max_in_window((call.start for call in ours.calls), window),
        most_429s=max_in_window(
            (call.end for call in ours.calls if call.outcome == RATE_LIMITED), window
        ),
    )


@dataclass(frozen=True)
class ScenarioResult:
    """A scenario's seeds; each figure is the mean over seeds (None where no seed has it)."""

    scenario: Scenario
    seeds: list[SeedResult]

    def mean(self, figure: Callable[[SeedResult], float | None]) -> float | None:
        values = [value for value in map(figure, self.seeds) if value is not None]
        return statistics.fmean(values) if values else None

    @property
    def span(self) -> float | None:
        return self.mean(lambda seed: seed.span_ratio())

    @property
    def process(self) -> float | None:
        return self.mean(lambda seed: seed.process_s / seed.bound_s)

    @property
    def fixed(self) -> float | None:
        return self.mean(lambda seed: seed.span_ratio("fixed"))

    @property
    def bare(self) -> float | None:
        return self.mean(lambda seed: seed.span_ratio("bare"))

    @property
    def fifo(self) -> float | None:
        return self.mean(lambda seed: seed.fifo_s / seed.bound_s)

    @property
    def calls_per_image(self) -> float | None:
        return self.mean(lambda seed: seed.imagebatch.calls / max(seed.imagebatch.images, 1))

    @property
    def rate_limited(self) -> float | None:
        return self.mean(lambda seed: float(seed.imagebatch.rate_limited))

    def images(self, variant: str = "imagebatch") -> float | None:
        """Images made, mean over seeds."""

        def made(seed: SeedResult) -> float | None:
            found = seed.measures.get(variant)
            return None if found is None else float(found.images)

        return self.mean(made)

    @property
    def utilisation(self) -> float | None:
        slots = self.scenario.slots * self.scenario.processes
        if self.scenario.cap is not None:
            slots = min(slots, self.scenario.cap)
        return self.mean(lambda seed: seed.imagebatch.busy_s / (slots * seed.imagebatch.span_s))

    @property
    def first_image_s(self) -> float | None:
        return self.mean(lambda seed: seed.first_image_s)

    @property
    def first_request_s(self) -> float | None:
        return self.mean(lambda seed: seed.first_request_s)

    def median_gap_ms(self, variant: str) -> float | None:
        def gap(seed: SeedResult) -> float | None:
            found = seed.measures.get(variant)
            if found is None or found.median_gap_s is None:
                return None
            return 1000 * found.median_gap_s

        return self.mean(gap)

    @property
    def fixed_over_ours(self) -> float | None:
        def ratio(seed: SeedResult) -> float | None:
            fixed = seed.measures.get("fixed")
            return None if fixed is None else fixed.span_s / seed.imagebatch.span_s

        return self.mean(ratio)

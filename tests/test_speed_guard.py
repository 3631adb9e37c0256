"""The speed benchmark's regression guard and its arithmetic.

The guard runs the headline scenario in miniature (40 images, C=5, 1 model second = 20 ms) and
checks ratios computed within the same run, never absolute times: imagebatch's span stays near
the bound its latency draws allow, and well ahead of fixed batches on the same draws.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bound import fifo_makespan, fixed_batch_makespan, lower_bound
from benchmarks.guard import GuardFigures, run_guard
from benchmarks.timeline import Call, idle_gaps, max_in_window, measure

SPAN_RATIO_MAX = 1.5
"""Generous: the ideal in-order schedule is at 1.06 on these draws, imagebatch at 1.1-1.2 on a
busy two-core machine; a runner that lost a slot or waited a poll per image goes past it."""
FIXED_OVER_OURS_MIN = 1.2
"""Fixed batches take 1.57 x the ideal schedule on these draws."""


TRIES = 3
"""A run the machine stalled for a second misses on its own; a regression misses every time."""


def meets_the_bounds(figures: GuardFigures) -> bool:
    return figures.span_ratio <= SPAN_RATIO_MAX and figures.fixed_over_ours >= FIXED_OVER_OURS_MIN


@pytest.mark.timeout(120)
async def test_headline_in_miniature_stays_near_the_bound_and_beats_fixed_batches(
    tmp_path: Path,
) -> None:
    runs = []
    for attempt in range(TRIES):
        figures = await run_guard(tmp_path / f"run-{attempt}")
        assert figures.images == 40
        assert 1.0 <= figures.ideal_ratio < 1.1
        runs.append(figures)
        if meets_the_bounds(figures):
            break
    assert meets_the_bounds(runs[-1]), runs


def test_lower_bound_takes_the_largest_of_its_three_terms() -> None:
    latencies = [4.0, 2.0, 6.0, 4.0]
    assert lower_bound(latencies, 2) == 8.0  # the work over the slots
    assert lower_bound(latencies, 8) == 6.0  # the slowest image
    assert lower_bound(latencies, 8, cap=1) == 16.0  # the provider's cap, not C
    # 4 starts at 6/min, burst 2: the last start at 2 * 10 s, then the quickest image
    assert lower_bound(latencies, 8, rate_per_minute=6.0, burst=2) == 22.0
    assert lower_bound(latencies, 8, rate_per_minute=6.0, burst=9) == 6.0
    with pytest.raises(ValueError):
        lower_bound([], 2)


def test_ideal_schedules() -> None:
    latencies = [5.0, 1.0, 1.0, 1.0, 4.0]
    assert fifo_makespan(latencies, 2) == 7.0  # slot 2 runs 1, 1, 1, then 4 from t=3
    assert fixed_batch_makespan(latencies, 2) == 5.0 + 1.0 + 4.0
    # one start every 10 s after a burst of 2: the 5th item starts at 30 s
    assert fifo_makespan(latencies, 8, rate_per_minute=6.0, burst=2) == 34.0


def test_idle_gaps_pair_each_request_with_the_oldest_slot_freed() -> None:
    calls = [
        Call(0.0, 1.0, "image"),
        Call(0.0, 2.0, "image"),
        Call(1.5, 3.0, "rate_limited"),  # took the slot freed at 1.0: 0.5 idle
        Call(2.1, 4.0, "image"),  # took the slot freed at 2.0: 0.1 idle
    ]
    gaps = idle_gaps(calls)
    assert gaps == pytest.approx([0.5, 0.1])
    figures = measure(calls)
    assert (figures.calls, figures.images, figures.rate_limited) == (4, 3, 1)
    assert figures.span_s == 4.0 and figures.first_image == 1.0
    assert figures.median_gap_s == pytest.approx(0.3)


def test_max_in_window_counts_a_sliding_window() -> None:
    assert max_in_window([0.0, 0.5, 1.0, 5.9, 6.0, 6.1], 6.0) == 5  # 0.5 to 6.1
    assert max_in_window([0.0, 6.0, 12.0], 6.0) == 1
    assert max_in_window([], 6.0) == 0

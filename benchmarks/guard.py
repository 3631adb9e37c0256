"""The headline scenario in miniature, in this process: the test suite's guard on the ratio.

40 items, C=5, sigma 0.6, mean 15 model seconds at 1 model second = 20 ms (LB about 2.4 s). The
orchestrator runs the job through its public API on the mock, then the fixed-batch baseline runs
on the same draws, one after the other, so they do not slow each other. Only ratios computed
within the run are returned: a loaded machine stretches both sides alike, and no figure is an
absolute time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from orchestrator import Orchestrator, Workspace, parse_spec

from .baselines import fixed_batches, mock_caller
from .bound import fifo_makespan
from .speed_plan import Scenario
from .speed_runs import spec_data
from .timeline import calls_from_items, measure

__all__ = ["GUARD", "GuardFigures", "run_guard"]

GUARD = Scenario("guard", "headline in miniature", "mock", 40, 5, model_s=0.02)


@dataclass(frozen=True)
class GuardFigures:
    """Ratios of one miniature run."""

    images: int
    span_ratio: float
    """imagebatch's span / LB."""
    ideal_ratio: float
    """The ideal in-order schedule / LB on the same draws: the best reachable without foresight."""
    fixed_over_ours: float
    """The fixed-batch baseline's span / imagebatch's span."""


async def run_guard(folder: Path, seed: int = 1, scenario: Scenario = GUARD) -> GuardFigures:
    """Run the miniature in `folder` (made; a workspace and the baseline's images go there)."""
    images = folder / "baseline"
    await asyncio.to_thread(images.mkdir, parents=True)
    spec = parse_spec(spec_data(scenario, seed), scenario.name)
    async with Orchestrator(Workspace(folder / "workspace")) as orchestrator:
        job = await orchestrator.create(spec)
        await orchestrator.start(job.id)
        await job.wait()
        ours = measure(calls_from_items(await job.items()))
    call = mock_caller(scenario, seed, images)
    fixed = measure(await fixed_batches(call, scenario.items, scenario.slots))
    bound = scenario.bound(seed)
    return GuardFigures(
        images=ours.images,
        span_ratio=ours.span_s / bound,
        ideal_ratio=fifo_makespan(scenario.latencies(seed), scenario.slots) / bound,
        fixed_over_ours=fixed.span_s / ours.span_s,
    )

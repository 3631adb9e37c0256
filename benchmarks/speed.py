"""The makespan benchmark (issue 11): how close a batch finishes to what the provider allows.

For each scenario and seed it runs the real `imagebatch` CLI, then two baselines on the same
latency draws (fixed batches of C under gather; the bare client behind a semaphore), and
reports every makespan as a ratio to the lower bound of those draws:

    LB = max(sum(L_i) / min(C, K), max(L_i), (N - B) * 60 / R + min(L_i))

both for the span (first request to last answer) and for imagebatch's whole process (spawn to
exit). Mock scenarios compress time (1 model second = 100 ms unless said); HTTP scenarios
run the OpenAI provider and the real `openai` SDK against the local fake server over loopback,
which draws a seeded lognormal latency per prompt and logs every request's times.

    python -m benchmarks speed                       # every scenario, about 8-10 minutes
    python -m benchmarks speed --quick               # headline and HTTP, one seed, ~1 minute
    python -m benchmarks speed --write benchmarks/RESULTS.md --chart docs/speed.png
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestrator import ConfigError, parse_spec

from . import baselines, report, speed_report
from .chart import draw_chart
from .speed_plan import QUICK, SCENARIOS, Scenario
from .speed_results import ScenarioResult, seed_result
from .speed_runs import BaselineChild, Pending, run_seed, spec_data

__all__ = ["add_arguments", "main"]

DEFAULT_TITLE = "Makespan benchmark (issue 11)"
METHOD = (
    "Ratios are makespans divided by the lower bound LB of the same latency draws (see "
    "`benchmarks/bound.py`), means over seeds. span = first request to last answer; "
    "process = imagebatch's process from spawn to exit (several processes: first spawn to last "
    "exit). baseline = fixed batches of C under `asyncio.gather`; bare SDK = every item "
    "gathered behind `asyncio.Semaphore(C)`, no journal (both: span). imagebatch runs the real "
    "CLI (`imagebatch run SPEC --no-progress`) in a fresh workspace; on the mock, its calls are "
    "the journal's attempts (each ends once its image is stored and recorded), and a seed's "
    "baselines run in a child process from the start of imagebatch's run of that seed, "
    "possibly alongside later seeds (they only sleep: the mock's latency is a timer). "
    "Over HTTP every variant runs alone against its own fake server, whose log gives every "
    "request's arrival and answer. ideal in-order = the makespan of a scheduler with no "
    "overhead starting items in order on the first free slot: the best any orchestrator that "
    "cannot foresee latencies reaches on these draws. Slot utilisation = time in calls / "
    "(min(C, K) x span). 429 storm = more than 5 answers 429 in one 60 model-second window. "
    "The third table takes each makespan apart: process/LB is about ideal in-order/LB (what the "
    "draws allow), times span / ideal in-order (what imagebatch adds while images are made; the "
    "bare SDK's figure beside it), plus start-up and exit / LB (before the first request and "
    "after the last answer)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="headline and HTTP scenarios only, one seed each"
    )
    parser.add_argument(
        "--only", metavar="NAMES", help="comma-separated scenario names: " + _names()
    )
    parser.add_argument(
        "--seeds", type=int, metavar="N", help="seeds per scenario (default: its own)"
    )
    parser.add_argument(
        "--write", type=Path, metavar="PATH", help="append the tables to this markdown file"
    )
    parser.add_argument("--title", default=DEFAULT_TITLE, help="heading of the appended section")
    parser.add_argument("--chart", type=Path, metavar="PNG", help="draw the ratios chart here")
    # The baseline child: runs baselines as told on stdin and prints their calls as JSON.
    parser.add_argument("--child", choices=["baseline"], help=argparse.SUPPRESS)


def main(args: argparse.Namespace) -> int:
    if args.child == "baseline":
        return baselines.child_main()
    run = report.describe_run()  # the load average before our own work adds to it
    started = time.perf_counter()
    scenarios, notes = _chosen(args)
    import_openai_s = _import_openai_s()
    with BaselineChild() as child:
        runs = [_run_scenario(scenario, args.seeds, child) for scenario in scenarios]
        results = [
            ScenarioResult(
                scenario, [seed_result(scenario, p.seed, p.outcomes(child)) for p in seeds]
            )
            for scenario, seeds in zip(scenarios, runs, strict=True)
        ]
    notes.append(f"The whole harness took {time.perf_counter() - started:.0f} s.")
    body = "\n\n".join([speed_report.render(results, import_openai_s, notes), METHOD])
    print(f"{report.render_run(run)}\n\n{body}")
    if args.chart is not None:
        # the section's title can be long: the chart says what it shows, when and of what
        chart_title = f"Makespan over the lower bound: {run.date}, commit {run.commit}"
        draw_chart(results, args.chart, chart_title)
        print(f"\nchart written to {args.chart}", file=sys.stderr)
    if args.write is not None:
        report.append_section(args.write, args.title, run, body)
        print(f"appended to {args.write}", file=sys.stderr)
    return 0


def _run_scenario(scenario: Scenario, seeds: int | None, child: BaselineChild) -> list[Pending]:
    """imagebatch on each seed (its baselines may still be running when this returns)."""
    runs = []
    for seed in range(1, (seeds or scenario.seeds) + 1):
        print(f"speed: {scenario.name}, seed {seed} ...", end=" ", file=sys.stderr, flush=True)
        clock = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="imagebatch-speed-") as folder:
            pending = run_seed(scenario, seed, Path(folder), child)
        runs.append(pending)
        ours = pending.ours
        assert ours.exited is not None and ours.spawned is not None
        ratio = (ours.exited - ours.spawned) / scenario.bound(seed)
        print(
            f"{time.perf_counter() - clock:.1f} s (process/LB {ratio:.3f})",
            file=sys.stderr,
            flush=True,
        )
    return runs


def _chosen(args: argparse.Namespace) -> tuple[list[Scenario], list[str]]:
    """The scenarios to run, and notes on those left out."""
    pool = QUICK if args.quick else SCENARIOS
    if args.only:
        wanted = {name.strip() for name in args.only.split(",") if name.strip()}
        unknown = wanted - {scenario.name for scenario in pool}
        if unknown:
            raise SystemExit(f"speed: unknown scenario {sorted(unknown)}; use {_names()}")
        pool = tuple(scenario for scenario in pool if scenario.name in wanted)
    chosen, notes = [], []
    for scenario in pool:
        try:
            parse_spec(spec_data(scenario, 1), scenario.name)
        except ConfigError as error:
            notes.append(
                f"Scenario `{scenario.name}` not run: this build refuses its spec ({error})."
            )
            continue
        chosen.append(scenario)
    return chosen, notes


def _import_openai_s() -> float:
    """Median wall time of `python -c "import openai"` over three runs."""
    times = []
    for _ in range(3):
        clock = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import openai"], check=True)
        times.append(time.perf_counter() - clock)
    return statistics.median(times)


def _names() -> str:
    return ", ".join(scenario.name for scenario in SCENARIOS)

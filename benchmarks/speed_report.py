"""The speed benchmark's markdown: the ratios table, the targets of issue 11, and the details."""

from __future__ import annotations

from collections.abc import Sequence

from .report import Row, render_table
from .speed_results import ScenarioResult

__all__ = ["render", "targets", "where_time_goes"]

STORM_429S = 5
"""More 429 answers than this within one quota window (60 model seconds) is a 429 storm."""


def render(results: Sequence[ScenarioResult], import_openai_s: float, notes: list[str]) -> str:
    """The whole section body: ratios, targets, per-seed details, notes."""
    parts = [
        ratios_table(results),
        render_table(targets(results, import_openai_s)),
        where_time_goes(results),
        details(results, import_openai_s),
    ]
    if notes:
        parts.append("\n".join(f"- {note}" for note in notes))
    return "\n\n".join(parts)


def ratios_table(results: Sequence[ScenarioResult]) -> str:
    lines = [
        "| scenario | span/LB | process/LB | baseline/LB | bare-SDK/LB | calls per image "
        "| 429s | slot utilisation | time to first image |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        first = result.first_image_s
        lines.append(
            f"| {result.scenario.about} ({_seeds(result)}) "
            f"| {_made(result, result.span, 'imagebatch')} | {_ratio(result.process)} "
            f"| {_made(result, result.fixed, 'fixed')} | {_made(result, result.bare, 'bare')} "
            f"| {_ratio(result.calls_per_image)} | {_count(result.rate_limited)} "
            f"| {_percent(result.utilisation)} | {'-' if first is None else f'{first:.2f} s'} |"
        )
    return "\n".join(lines)


def targets(results: Sequence[ScenarioResult], import_openai_s: float) -> list[Row]:
    """One row per target of issue 11 whose scenario ran."""
    found = {result.scenario.name: result for result in results}
    rows: list[Row] = []
    if (headline := found.get("headline")) is not None:
        rows.append(_at_most("headline span/LB, mean over seeds", headline.span, 1.05))
        rows.append(_at_most("headline process/LB, mean over seeds", headline.process, 1.10))
        rows.append(_at_least("fixed-batch / imagebatch makespan", headline.fixed_over_ours, 1.5))
    for name in ("sigma1", "c10"):
        if (result := found.get(name)) is not None:
            rows.append(_at_most(f"{result.scenario.about}: process/LB", result.process, 1.15))
    if (big := found.get("n1000")) is not None:
        rows.append(_at_most(f"{big.scenario.about}: process/LB", big.process, 1.10))
    if (http := found.get("http")) is not None:
        rows += _http_rows(http, import_openai_s)
    if (rate := found.get("rate")) is not None:
        rows.append(_at_most("rate-bound: process/LB", rate.process, 1.10))
        rows.append(_at_most("rate-bound: 429s", rate.rate_limited, 0, digits=0))
    for name in ("cap8", "cap32", "capauto"):
        if (cap := found.get(name)) is not None:
            about = cap.scenario.about.removeprefix("HTTP: ")
            rows.append(_at_most(f"{about}: calls per image", cap.calls_per_image, 1.10))
            rows.append(_at_most(f"{about}: process / LB(K)", cap.process, 1.30))
    if (ten := found.get("ten")) is not None:
        rows += _ten_rows(ten)
    return rows


def _http_rows(http: ScenarioResult, import_openai_s: float) -> list[Row]:
    ours, bare = http.median_gap_ms("imagebatch"), http.median_gap_ms("bare")
    first = http.first_request_s
    return [
        _at_most("HTTP 80 images: process/LB", http.process, 1.15),
        Row(
            metric="HTTP: median idle gap, answer to the slot's next request",
            value="-" if ours is None else f"{ours:.1f} ms",
            target="-" if bare is None else f"<= bare SDK {bare:.1f} + 2 ms",
            passed=None if ours is None or bare is None else ours <= bare + 2.0,
        ),
        Row(
            metric="HTTP: process start to first request",
            value="-" if first is None else f"{first:.2f} s",
            target=f"<= import openai {import_openai_s:.2f} + 0.2 s",
            passed=None if first is None else first <= import_openai_s + 0.2,
        ),
    ]


def _ten_rows(ten: ScenarioResult) -> list[Row]:
    quota = int(ten.scenario.quota_per_model_min or 0)
    allowed = quota + ten.scenario.quota_burst
    most = max(seed.most_starts for seed in ten.seeds)
    storms = max(seed.most_429s for seed in ten.seeds)
    return [
        Row(
            metric="ten processes: most starts in any 60 model-s window",
            value=str(most),
            target=f"<= {allowed} ({quota} + burst)",
            passed=most <= allowed,
        ),
        Row(
            metric="ten processes: most 429s in any 60 model-s window",
            value=str(storms),
            target=f"<= {STORM_429S} (no storm)",
            passed=storms <= STORM_429S,
        ),
    ]


def where_time_goes(results: Sequence[ScenarioResult]) -> str:
    """Each makespan taken apart (means over seeds): what the draws allow any orchestrator
    that cannot foresee latencies, what imagebatch adds within the span (and what the bare SDK
    adds, for comparison), and what it adds outside it (start-up before the first request,
    exit after the last answer)."""
    lines = [
        "| scenario | ideal in-order/LB | span / ideal in-order | bare SDK / ideal in-order "
        "| start-up and exit / LB | process/LB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        within = result.mean(lambda seed: seed.imagebatch.span_s / seed.fifo_s)
        bare = result.mean(
            lambda seed: (
                seed.measures["bare"].span_s / seed.fifo_s if "bare" in seed.measures else None
            )
        )
        outside = result.mean(lambda seed: (seed.process_s - seed.imagebatch.span_s) / seed.bound_s)
        lines.append(
            f"| {result.scenario.name} | {_ratio3(result.fifo)} | {_ratio3(within)} "
            f"| {_ratio3(bare)} | {_ratio3(outside)} | {_ratio3(result.process)} |"
        )
    return "\n".join(lines)


def details(results: Sequence[ScenarioResult], import_openai_s: float) -> str:
    lines = [
        "| scenario | seed | LB | ideal in-order/LB | span | process | fixed-batch | bare SDK "
        "| images | calls | 429s | median gap ours / bare | first request | exit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        for seed in result.seeds:
            ours = seed.imagebatch
            fixed, bare = seed.measures.get("fixed"), seed.measures.get("bare")
            gap = _ms(ours.median_gap_s) + " / " + _ms(bare.median_gap_s if bare else None)
            lines.append(
                f"| {result.scenario.name} | {seed.seed} | {seed.bound_s:.2f} s "
                f"| {seed.fifo_s / seed.bound_s:.3f} | {ours.span_s:.2f} s "
                f"| {seed.process_s:.2f} s "
                f"| {_seconds(fixed.span_s if fixed else None)} "
                f"| {_seconds(bare.span_s if bare else None)} | {ours.images} | {ours.calls} "
                f"| {ours.rate_limited} | {gap} | {seed.first_request_s:.2f} s "
                f"| {','.join(map(str, seed.exit_codes))} |"
            )
    lines.append(f'\n`python -c "import openai"` took {import_openai_s:.2f} s (median of 3).')
    return "\n".join(lines)


def _at_most(metric: str, value: float | None, limit: float, digits: int = 3) -> Row:
    shown = "-" if value is None else f"{value:.{digits}f}"
    passed = None if value is None else value <= limit
    return Row(metric=metric, value=shown, target=f"<= {limit:g}", passed=passed)


def _at_least(metric: str, value: float | None, limit: float) -> Row:
    shown = "-" if value is None else f"{value:.3f}"
    passed = None if value is None else value >= limit
    return Row(metric=metric, value=shown, target=f">= {limit:g}", passed=passed)


def _made(result: ScenarioResult, ratio: float | None, variant: str) -> str:
    """The ratio, and how many images the variant made when it did not make them all."""
    images, wanted = result.images(variant), result.scenario.items
    if ratio is None or images is None or images >= wanted:
        return _ratio(ratio)
    return f"{ratio:.2f} ({images:.0f}/{wanted} images)"


def _seeds(result: ScenarioResult) -> str:
    count = len(result.seeds)
    return f"{count} seed{'s' if count > 1 else ''}"


def _ratio3(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}".removesuffix(".0")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{1000 * value:.1f} ms"

"""The budget's arithmetic for the runner's verbs (`runs.py`): whether an attempt may start,
and what ending one does to its reservation. Pure: the verbs apply it in their transactions."""

from __future__ import annotations

from typing import Literal

from ..records import ErrorInfo, ItemRecord, JobRecord
from ..wording import format_usd

__all__ = ["MAYBE_BILLED", "WAIT_FOR_BUDGET", "over_budget", "released"]


WAIT_FOR_BUDGET: Literal["wait"] = "wait"
MAYBE_BILLED = frozenset({"timeout", "bad_response"})
"""Errors after which the provider may have billed the attempt: its reservation stays taken."""


def over_budget(job: JobRecord, reserve_usd: float | None) -> ErrorInfo | Literal["wait"] | None:
    """Whether an attempt reserving `reserve_usd` may start: None (yes), `"wait"` (once
    attempts in flight give back their reservations), or why the item cannot start at all."""
    budget = job.config.limits.budget_usd
    if budget is None or reserve_usd is None:
        return None
    taken = job.cost_usd + job.uncertain_usd + job.reserved_usd
    if taken + reserve_usd <= budget + 1e-9:
        return None
    if job.reserved_usd > 1e-9:
        return WAIT_FOR_BUDGET
    message = (
        f"not started: its {format_usd(reserve_usd)} would take spending past the budget of "
        f"{format_usd(budget)} ({format_usd(taken)} spent or possibly billed)"
    )
    return ErrorInfo(kind="budget", message=message)


def released(item: ItemRecord, *, maybe_billed: bool) -> dict[str, float]:
    """The fields that close the item's reservation: given back, or kept as possibly billed."""
    if not item.reserved_usd:
        return {}
    if maybe_billed:
        return {"reserved_usd": 0.0, "uncertain_usd": item.uncertain_usd + item.reserved_usd}
    return {"reserved_usd": 0.0}

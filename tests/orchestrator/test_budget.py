"""`limits.budget_usd`: no attempt starts that could take spending past the budget; what an
attempt reserves comes back when it fails unbilled, and stays taken when it may have been
billed (a crash, a timeout, a stop in flight)."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict, Unpack

import pytest

from orchestrator.errors import BadResponseError, ConfigError, UnavailableError
from orchestrator.journal import WAIT_FOR_BUDGET, DiskJournal, RunJournal
from orchestrator.spec import JobSpec, parse_spec
from orchestrator.states import ItemStatus, JobStatus
from orchestrator.testing.clock import FakeClock
from orchestrator.testing.scripted import ScriptedProvider, make_spec, next_event

from .conftest import MakeOrchestrator
from .test_journal import make_spec as make_journal_spec

PRICE = 0.01


class Limits(TypedDict, total=False):
    """The `limits` these tests set besides the budget."""

    concurrency: int


def with_budget(count: int, budget: float, **limits: Unpack[Limits]) -> JobSpec:
    data = make_spec(count, **limits).model_dump()
    data["limits"]["budget_usd"] = budget
    return parse_spec(data, "test")


async def test_concurrent_attempts_never_reserve_past_the_budget(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider(price_usd=PRICE, latency_s=0.05)
    job = await make_orchestrator(provider).submit(with_budget(20, 0.055, concurrency=8))
    record = await job.wait()
    items = await job.items()
    completed = [item for item in items if item.status == ItemStatus.COMPLETED]
    failed = [item for item in items if item.status == ItemStatus.FAILED]
    assert len(completed) == 5 and len(provider.calls) == 5  # 5 x $0.01 fit in $0.055
    assert len(failed) == 15
    assert all(item.error is not None and item.error.kind == "budget" for item in failed)
    assert all(not item.attempts for item in failed)  # not attempted, nothing paid
    assert record.status == JobStatus.PARTIAL
    assert record.cost_usd == pytest.approx(0.05) and record.cost_usd <= 0.055
    assert record.reserved_usd == 0.0 and record.uncertain_usd == 0.0


async def test_an_unbilled_failure_gives_its_reservation_back(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider({"i0": [UnavailableError("500")]}, price_usd=PRICE)
    orch = make_orchestrator(provider, retry_base_s=0.01)
    job = await orch.submit(with_budget(2, 0.02, concurrency=1))
    assert (await job.wait()).status == JobStatus.COMPLETED
    assert len(provider.calls) == 3 and (await job.status()).cost_usd == pytest.approx(0.02)


async def test_a_failure_that_may_have_been_billed_keeps_its_reservation(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider({"i0": [BadResponseError("truncated")]}, price_usd=PRICE)
    orch = make_orchestrator(provider, retry_base_s=0.01)
    job = await orch.submit(with_budget(2, 0.02, concurrency=1))
    record = await job.wait()
    # i0's first answer was bad (maybe billed: $0.01 stays taken); i1 got the slot meanwhile
    # and paid $0.01; i0's next attempt would need a third $0.01: it fails for the budget.
    assert record.uncertain_usd == pytest.approx(0.01) and record.cost_usd == pytest.approx(0.01)
    items = {item.id: item for item in await job.items()}
    assert items["i1"].status == ItemStatus.COMPLETED
    assert items["i0"].status == ItemStatus.FAILED and items["i0"].error is not None
    assert items["i0"].error.kind == "budget" and len(provider.calls_for("i0")) == 1


async def test_a_stopped_run_counts_what_was_in_flight_and_the_next_run_keeps_to_the_budget(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider({"i0": ["held"], "i1": ["held"]}, price_usd=PRICE)
    first = make_orchestrator(provider)
    job = await first.submit(with_budget(4, 0.035, concurrency=2))
    while len(provider.calls) < 2:
        await next_event(job, lambda event: event.type == "item.started", within_s=30)
    assert (await job.status()).reserved_usd == pytest.approx(0.02)
    await first.aclose()  # the run stops with two calls in flight: they may be billed
    again = make_orchestrator(provider)
    stopped = await again.handle(job.id).status()
    assert stopped.reserved_usd == 0.0 and stopped.uncertain_usd == pytest.approx(0.02)

    provider.gate.set()
    record = await (await again.start(job.id)).wait()
    # $0.02 possibly billed + one more image = $0.03; a fourth would pass $0.035
    assert record.cost_usd == pytest.approx(0.01)
    assert record.cost_usd + record.uncertain_usd <= 0.035
    statuses = sorted(str(item.status) for item in await again.handle(job.id).items())
    assert statuses == ["completed", "failed", "failed", "failed"]


async def test_a_budget_needs_prices(make_orchestrator: MakeOrchestrator) -> None:
    orch = make_orchestrator(ScriptedProvider())  # no listed price
    with pytest.raises(ConfigError, match=r"limits.budget_usd: items\[0\] \(i0\) has no known"):
        await orch.submit(with_budget(2, 1.0))
    assert await orch.jobs() == []  # nothing written


def test_after_a_crash_what_was_in_flight_stays_counted_and_the_budget_holds(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    spec = make_journal_spec("k", 4).model_dump()
    spec["limits"]["budget_usd"] = 0.025
    dead = DiskJournal(tmp_path / "journal", clock=clock)
    job, lease = dead.create_job(parse_spec(spec, "test"), lock=True)
    assert lease is not None
    run = RunJournal(dead, job.id, lease)
    run.start()
    assert run.start_attempt("i0", 0.01) is not None
    assert run.start_attempt("i1", 0.01) is not None
    assert run.start_attempt("i2", 0.01) == WAIT_FOR_BUDGET  # $0.03 would pass $0.025
    dead.close()  # the process is killed with two calls in flight

    clock.advance(301.0)  # its lock goes stale
    disk = DiskJournal(tmp_path / "journal", clock=clock)
    try:
        taken_over = disk.locks.acquire(job.key, job.id)
        snapshot = RunJournal(disk, job.id, taken_over).start()
        assert snapshot.job.reserved_usd == 0.0
        assert snapshot.job.uncertain_usd == pytest.approx(0.02)  # maybe billed: still taken
        again = RunJournal(disk, job.id, taken_over)
        assert again.start_attempt("i0", 0.01) is None  # nothing in flight: it fails
        item = disk.item(job.id, "i0")
        assert item.status == ItemStatus.FAILED and item.error is not None
        assert item.error.kind == "budget"
        assert item.error.message == (
            "not started: its $0.01 would take spending past the budget of $0.025 "
            "($0.02 spent or possibly billed)"
        )
    finally:
        disk.close()

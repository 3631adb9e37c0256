"""The pipeline end to end on one loop: retries, Retry-After, cool-downs, timeouts, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.clock import FakeClock
from orchestrator.errors import (
    AuthError,
    ContentRejectedError,
    KeyConflictError,
    RateLimitedError,
    UnavailableError,
)
from orchestrator.records import EventType
from orchestrator.states import ItemStatus, JobStatus
from orchestrator.storage import atomic_write, sha256_hex

from .conftest import MakeOrchestrator
from .scripted import ScriptedProvider, make_spec, png_bytes


async def test_all_items_complete_with_files(make_orchestrator: MakeOrchestrator) -> None:
    provider = ScriptedProvider()
    orch = make_orchestrator(provider)
    job = await orch.create(make_spec(3))
    job = await orch.run(job.id)
    assert job.status == JobStatus.COMPLETED
    assert not job.active
    for item in orch.journal.items(job.id):
        assert item.status == ItemStatus.COMPLETED
        for rel in (item.raw_path, item.image_path, item.thumb_path):
            assert rel is not None and orch.workspace.absolute(rel).is_file()
        raw = orch.workspace.absolute(item.raw_path or "").read_bytes()
        assert sha256_hex(raw) == item.raw_sha256
    assert job.cost_usd == pytest.approx(0.03)


async def test_retry_after_is_honoured(
    make_orchestrator: MakeOrchestrator, fake_clock: FakeClock
) -> None:
    provider = ScriptedProvider(
        {"i0": [RateLimitedError("slow down", retry_after=30.0)]}, clock=fake_clock
    )
    orch = make_orchestrator(provider, fake_clock)
    job = await orch.create(make_spec(1))
    job = await orch.run(job.id)
    assert job.status == JobStatus.COMPLETED
    first, second = provider.calls_for("i0")
    assert second.at - first.at >= 30.0  # never earlier than the provider asked
    retrying = [e for e in orch.journal.events(job_id=job.id) if e.type == EventType.ITEM_RETRYING]
    assert retrying[0].data["kind"] == "rate_limited"
    assert retrying[0].data["delay_s"] >= 30.0
    item = orch.journal.item(job.id, "i0")
    assert [a.outcome for a in item.attempts] == ["error", "ok"]
    assert item.attempts[0].retry_after == 30.0


async def test_429_cools_down_every_attempt_to_the_provider(
    make_orchestrator: MakeOrchestrator, fake_clock: FakeClock
) -> None:
    provider = ScriptedProvider(
        {"i0": [RateLimitedError("slow down", retry_after=20.0)]}, clock=fake_clock
    )
    orch = make_orchestrator(provider, fake_clock)
    job = await orch.create(make_spec(2, concurrency=1))
    await orch.run(job.id)
    first_429 = provider.calls_for("i0")[0].at
    other = provider.calls_for("i1")[0].at
    assert other - first_429 >= 20.0  # i1 never had a 429 itself, yet it waited


async def test_backoff_does_not_hold_a_concurrency_slot(
    make_orchestrator: MakeOrchestrator, fake_clock: FakeClock
) -> None:
    provider = ScriptedProvider({"i0": [UnavailableError("500")]})
    orch = make_orchestrator(provider, fake_clock)
    job = await orch.create(make_spec(2, concurrency=1))
    await orch.run(job.id)
    order = [(call.item_id, call.attempt) for call in provider.calls]
    assert order == [("i0", 1), ("i1", 1), ("i0", 2)]


async def test_retries_stop_at_max_attempts(
    make_orchestrator: MakeOrchestrator, fake_clock: FakeClock
) -> None:
    provider = ScriptedProvider({"i0": [UnavailableError("500")] * 5})
    orch = make_orchestrator(provider, fake_clock)
    job = await orch.create(make_spec(2, max_attempts=3))
    job = await orch.run(job.id)
    assert job.status == JobStatus.PARTIAL
    item = orch.journal.item(job.id, "i0")
    assert item.status == ItemStatus.FAILED
    assert len(provider.calls_for("i0")) == 3
    assert item.error is not None and item.error.kind == "unavailable"


async def test_permanent_error_fails_at_once_and_others_finish(
    make_orchestrator: MakeOrchestrator, fake_clock: FakeClock
) -> None:
    provider = ScriptedProvider({"i1": [ContentRejectedError("moderation_blocked")]})
    orch = make_orchestrator(provider, fake_clock)
    job = await orch.create(make_spec(3))
    job = await orch.run(job.id)
    assert job.status == JobStatus.PARTIAL
    assert job.count(ItemStatus.COMPLETED) == 2
    rejected = orch.journal.item(job.id, "i1")
    assert rejected.error is not None and rejected.error.kind == "content_rejected"
    assert len(provider.calls_for("i1")) == 1


async def test_all_failing_makes_the_job_failed(
    make_orchestrator: MakeOrchestrator, fake_clock: FakeClock
) -> None:
    script = {f"i{n}": [ContentRejectedError("no")] for n in range(2)}
    orch = make_orchestrator(ScriptedProvider(script), fake_clock)
    job = await orch.create(make_spec(2))
    assert (await orch.run(job.id)).status == JobStatus.FAILED


async def test_auth_error_stops_remaining_attempts(
    make_orchestrator: MakeOrchestrator, fake_clock: FakeClock
) -> None:
    provider = ScriptedProvider({"i0": [AuthError("401 invalid key")]})
    orch = make_orchestrator(provider, fake_clock)
    job = await orch.create(make_spec(3, concurrency=1))
    job = await orch.run(job.id)
    assert job.status == JobStatus.FAILED
    assert [call.item_id for call in provider.calls] == ["i0"]
    for item in orch.journal.items(job.id):
        assert item.error is not None and item.error.kind == "auth"


async def test_timeout_is_retried_then_fails(
    make_orchestrator: MakeOrchestrator, fake_clock: FakeClock
) -> None:
    provider = ScriptedProvider({"i0": ["hang", "hang"]})
    orch = make_orchestrator(provider, fake_clock)
    job = await orch.create(make_spec(1, timeout_s=0.05, max_attempts=2))
    job = await orch.run(job.id)
    item = orch.journal.item(job.id, "i0")
    assert item.status == ItemStatus.FAILED
    assert item.error is not None and item.error.kind == "timeout"
    assert [a.error.kind for a in item.attempts if a.error] == ["timeout", "timeout"]


async def test_corrupt_bytes_are_retried(
    make_orchestrator: MakeOrchestrator, fake_clock: FakeClock
) -> None:
    provider = ScriptedProvider({"i0": ["bad"]})
    orch = make_orchestrator(provider, fake_clock)
    job = await orch.create(make_spec(1))
    job = await orch.run(job.id)
    assert job.status == JobStatus.COMPLETED
    item = orch.journal.item(job.id, "i0")
    assert item.attempts[0].error is not None
    assert item.attempts[0].error.kind == "bad_response"


async def test_interrupt_leaves_job_resumable_and_resume_pays_nothing_twice(
    make_orchestrator: MakeOrchestrator,
) -> None:
    gate = asyncio.Event()
    provider = ScriptedProvider({"i0": ["ok"], "i1": ["hang"], "i2": ["hang"]})
    orch = make_orchestrator(provider)
    job = await orch.create(make_spec(3))
    task = asyncio.create_task(orch.run(job.id))
    while orch.journal.item(job.id, "i0").status != ItemStatus.COMPLETED:
        await asyncio.sleep(0.01)
    while len(provider.calls) < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    job = orch.journal.job(job.id)
    assert job.status == JobStatus.PENDING and not job.active
    stopped = orch.journal.item(job.id, "i1")
    assert stopped.status == ItemStatus.PENDING
    assert stopped.attempts[-1].outcome == "interrupted"
    assert orch.locks.holder(job.key) is None  # the lock is released on the way out

    gate.set()
    job = await orch.run(job.id)
    assert job.status == JobStatus.COMPLETED
    assert len(provider.calls_for("i0")) == 1  # the finished image was not paid for again
    assert len(provider.calls_for("i1")) == 2


async def test_cancel_request_through_the_journal(make_orchestrator: MakeOrchestrator) -> None:
    provider = ScriptedProvider({"i0": ["hang"], "i1": ["hang"]})
    orch = make_orchestrator(provider)
    job = await orch.create(make_spec(4, concurrency=2))
    task = asyncio.create_task(orch.run(job.id))
    while len(provider.calls) < 2:
        await asyncio.sleep(0.01)
    requested = orch.cancel(job.id)
    assert requested.cancel_requested  # a live runner owns the running items
    job = await asyncio.wait_for(task, 10)
    assert job.status == JobStatus.CANCELLED
    assert {item.status for item in orch.journal.items(job.id)} == {ItemStatus.CANCELLED}
    assert len(provider.calls) == 2  # pending items were never started


async def test_cancel_without_a_runner_cancels_everything_unfinished(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orch = make_orchestrator(ScriptedProvider())
    job = await orch.create(make_spec(2))
    job = orch.cancel(job.id)
    assert job.status == JobStatus.CANCELLED and not job.cancel_requested


async def test_explicit_retry_gets_fresh_attempts(
    make_orchestrator: MakeOrchestrator, fake_clock: FakeClock
) -> None:
    provider = ScriptedProvider({"i0": [UnavailableError("500"), UnavailableError("500")]})
    orch = make_orchestrator(provider, fake_clock)
    job = await orch.create(make_spec(2, max_attempts=2))
    assert (await orch.run(job.id)).status == JobStatus.PARTIAL
    assert orch.retry(job.id) == ["i0"]
    job = await orch.run(job.id)
    assert job.status == JobStatus.COMPLETED
    assert len(provider.calls_for("i0")) == 3
    assert len(provider.calls_for("i1")) == 1


async def test_written_raw_image_is_only_post_processed_on_resume(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider()
    orch = make_orchestrator(provider)
    job = await orch.create(make_spec(1))
    # What a process that died right after recording the generated image leaves behind:
    raw = orch.workspace.raw_path(job.id, "i0", "png")
    data = png_bytes(80, 60)
    atomic_write(raw, data)
    orch.journal.update_item(job.id, "i0", EventType.ITEM_STARTED, to=ItemStatus.RUNNING)
    orch.journal.update_item(
        job.id,
        "i0",
        EventType.ITEM_GENERATED,
        raw_path=orch.workspace.relative(raw),
        raw_sha256=sha256_hex(data),
    )
    job = await orch.run(job.id)
    assert job.status == JobStatus.COMPLETED
    assert provider.calls == []  # no second paid call
    item = orch.journal.item(job.id, "i0")
    assert (item.width, item.height) == (80, 60)


async def test_second_runner_for_the_same_key_conflicts(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider({"i0": ["hang"]})
    orch = make_orchestrator(provider)
    job = await orch.create(make_spec(1))
    task = asyncio.create_task(orch.run(job.id))
    while not provider.calls:
        await asyncio.sleep(0.01)
    other = make_orchestrator(provider)
    with pytest.raises(KeyConflictError) as raised:
        await other.run(job.id)
    assert raised.value.job_id == job.id
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_events_are_ordered_and_published(make_orchestrator: MakeOrchestrator) -> None:
    orch = make_orchestrator(ScriptedProvider())
    with orch.bus.subscribe() as subscription:
        job = await orch.create(make_spec(2))
        await orch.run(job.id)
        seen = []
        while (event := subscription.get_nowait()) is not None:
            seen.append(event)
    stored = orch.journal.events(job_id=job.id)
    assert [e.seq for e in seen] == [e.seq for e in stored]
    assert [e.seq for e in stored] == sorted(e.seq for e in stored)
    assert stored[0].type == EventType.JOB_CREATED
    assert stored[-1].type == EventType.JOB_FINISHED


async def test_an_image_answered_as_the_run_is_cancelled_is_still_recorded(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider()
    orch = make_orchestrator(provider)
    job = await orch.create(make_spec(1))
    task = asyncio.create_task(orch.run(job.id))
    provider.on_answer = task.cancel  # Ctrl-C lands just as the paid image arrives
    with pytest.raises(asyncio.CancelledError):
        await task
    item = orch.journal.item(job.id, "i0")
    assert item.raw_path is not None and item.status == ItemStatus.PENDING
    provider.on_answer = None
    assert (await orch.run(job.id)).status == JobStatus.COMPLETED
    assert len(provider.calls) == 1  # resumed by post-processing the kept image


async def test_an_absurd_retry_after_cools_down_no_longer_than_the_policy_cap(
    make_orchestrator: MakeOrchestrator, fake_clock: FakeClock
) -> None:
    provider = ScriptedProvider(
        {"i0": [RateLimitedError("slow down", retry_after=86_400.0)]}, clock=fake_clock
    )
    orch = make_orchestrator(provider, fake_clock)
    job = await orch.create(make_spec(2, concurrency=1))
    assert (await orch.run(job.id)).status == JobStatus.COMPLETED
    # a day-long header does not stall the whole job for a day: the cool-down is capped (the
    # fake clock also moves for the heartbeat's sleeps, so the waits are read, not the clock)
    assert 3000 < max(fake_clock.sleeps) <= 3600.0, fake_clock.sleeps


async def test_retry_refuses_a_job_another_runner_is_running(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider({"i0": [ContentRejectedError("no")], "i1": ["hang"]})
    orch = make_orchestrator(provider)
    job = await orch.create(make_spec(2, concurrency=1))
    task = asyncio.create_task(orch.run(job.id))
    while orch.journal.item(job.id, "i0").status != ItemStatus.FAILED:
        await asyncio.sleep(0.01)
    with pytest.raises(KeyConflictError):
        make_orchestrator(provider).retry(job.id)
    assert orch.journal.item(job.id, "i0").status == ItemStatus.FAILED  # nothing was reset
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_interrupted_and_cancelled_attempts_do_not_use_up_tries() -> None:
    from orchestrator.pipeline import _attempts_made
    from orchestrator.records import AttemptRecord, ItemRecord

    attempts = tuple(
        AttemptRecord(number=n, started_at=0.0, outcome=outcome)
        for n, outcome in enumerate(["error", "interrupted", "cancelled", "interrupted", "error"])
    )
    item = ItemRecord(
        job_id="j", id="i", index=0, prompt="p", attempts=attempts, created_at=0, updated_at=0
    )
    assert _attempts_made(item) == 2
    assert _attempts_made(item.model_copy(update={"attempts_before_retry": 1})) == 1

"""A job end to end through `Orchestrator` and `JobHandle`: retries, Retry-After, cool-downs,
timeouts, permanent errors, interrupts and cancels. Timers run on looptime's virtual clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orchestrator.attempts import attempts_made
from orchestrator.errors import (
    AuthError,
    ConfigError,
    ContentRejectedError,
    KeyConflictError,
    RateLimitedError,
    UnavailableError,
)
from orchestrator.events import (
    ItemCompleted,
    ItemGenerated,
    ItemRetrying,
    JobCreated,
    JobFinished,
)
from orchestrator.journal import RawImage
from orchestrator.providers.base import GeneratedImage, GenerateRequest
from orchestrator.records import AttemptRecord, ItemRecord
from orchestrator.stages import PostStage
from orchestrator.states import ItemStatus, JobStatus
from orchestrator.storage import Workspace, atomic_write, sha256_hex
from orchestrator.testing.scripted import ScriptedProvider, make_spec, next_event, png_bytes

from .conftest import MakeOrchestrator, new_orchestrator

pytestmark = pytest.mark.looptime


async def test_all_items_complete_with_files(make_orchestrator: MakeOrchestrator) -> None:
    orch = make_orchestrator(ScriptedProvider(), post=PostStage())  # worker processes
    job = await orch.submit(make_spec(3))
    record = await job.wait()
    assert record.status == JobStatus.COMPLETED
    assert not record.active
    for item in await job.items():
        assert item.status == ItemStatus.COMPLETED
        for rel in (item.raw_path, item.image_path, item.thumb_path):
            assert rel is not None and orch.workspace.absolute(rel).is_file()
        raw = orch.workspace.absolute(item.raw_path or "").read_bytes()
        assert sha256_hex(raw) == item.raw_sha256
    assert record.cost_usd == pytest.approx(0.03)
    assert await orch.journal.holder(record.key) is None  # the lock is given back


async def test_retry_after_is_honoured(make_orchestrator: MakeOrchestrator) -> None:
    provider = ScriptedProvider({"i0": [RateLimitedError("slow down", retry_after=30.0)]})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(1))
    assert (await job.wait()).status == JobStatus.COMPLETED
    first, second = provider.calls_for("i0")
    assert second.at - first.at >= 30.0  # never earlier than the provider asked
    retrying = await next_event(job, lambda e: isinstance(e, ItemRetrying))
    assert isinstance(retrying, ItemRetrying)
    assert retrying.kind == "rate_limited" and retrying.delay_s >= 30.0
    item = (await job.items())[0]
    assert [a.outcome for a in item.attempts] == ["error", "ok"]
    assert item.attempts[0].retry_after == 30.0


async def test_429_cools_down_every_attempt_to_the_provider(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider({"i0": [RateLimitedError("slow down", retry_after=20.0)]})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(2, concurrency=1))
    await job.wait()
    first_429 = provider.calls_for("i0")[0].at
    other = provider.calls_for("i1")[0].at
    assert other - first_429 >= 20.0  # i1 never had a 429 itself, yet it waited


async def test_backoff_does_not_hold_a_concurrency_slot(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider({"i0": [UnavailableError("500")]})
    orch = make_orchestrator(provider, retry_base_s=10.0)
    job = await orch.submit(make_spec(2, concurrency=1))
    assert (await job.wait()).status == JobStatus.COMPLETED
    order = [(call.item_id, call.attempt) for call in provider.calls]
    assert order == [("i0", 1), ("i1", 1), ("i0", 2)]


async def test_rate_limits_do_not_use_up_max_attempts(make_orchestrator: MakeOrchestrator) -> None:
    """A per-minute quota met by a fixed concurrency: five 429s in a row, with no Retry-After
    (as Gemini sends them), then an image. Before, the item failed `rate_limited` at its third
    429 (`max_attempts`), and a batch lost a third of its items in the quota's first minute."""
    provider = ScriptedProvider({"i0": [RateLimitedError("quota")] * 5})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(2, max_attempts=2))
    assert (await job.wait()).status == JobStatus.COMPLETED
    assert len(provider.calls_for("i0")) == 6


async def test_rate_limits_stop_at_their_own_limit(make_orchestrator: MakeOrchestrator) -> None:
    """A provider that never stops answering 429: the item fails after the policy's
    `max_rate_limited` of them, not never."""
    provider = ScriptedProvider({"i0": [RateLimitedError("quota", retry_after=1.0)] * 50})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(1, max_attempts=3))
    assert (await job.wait()).status == JobStatus.FAILED
    assert len(provider.calls_for("i0")) == 20  # limits.max_rate_limited's default
    item = (await job.items())[0]
    assert item.error is not None and item.error.kind == "rate_limited"


async def test_a_spec_sets_how_many_rate_limits_an_item_may_meet(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider({"i0": [RateLimitedError("quota", retry_after=1.0)] * 5})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(1, max_attempts=3, max_rate_limited=2))
    assert (await job.wait()).status == JobStatus.FAILED
    assert len(provider.calls_for("i0")) == 2


async def test_retries_stop_at_max_attempts(make_orchestrator: MakeOrchestrator) -> None:
    provider = ScriptedProvider({"i0": [UnavailableError("500")] * 5})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(2, max_attempts=3))
    assert (await job.wait()).status == JobStatus.PARTIAL
    item = (await job.items())[0]
    assert item.status == ItemStatus.FAILED
    assert len(provider.calls_for("i0")) == 3
    assert item.error is not None and item.error.kind == "unavailable"


async def test_permanent_error_fails_at_once_and_others_finish(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider({"i1": [ContentRejectedError("moderation_blocked")]})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(3))
    record = await job.wait()
    assert record.status == JobStatus.PARTIAL
    assert record.count(ItemStatus.COMPLETED) == 2
    rejected = (await job.items())[1]
    assert rejected.error is not None and rejected.error.kind == "content_rejected"
    assert len(provider.calls_for("i1")) == 1


async def test_all_failing_makes_the_job_failed(make_orchestrator: MakeOrchestrator) -> None:
    script = {f"i{n}": [ContentRejectedError("no")] for n in range(2)}
    orch = make_orchestrator(ScriptedProvider(script))
    job = await orch.submit(make_spec(2))
    assert (await job.wait()).status == JobStatus.FAILED


async def test_auth_error_stops_remaining_attempts(make_orchestrator: MakeOrchestrator) -> None:
    provider = ScriptedProvider({"i0": [AuthError("401 invalid key")]})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(3, concurrency=1))
    assert (await job.wait()).status == JobStatus.FAILED
    assert [call.item_id for call in provider.calls] == ["i0"]
    for item in await job.items():
        assert item.error is not None and item.error.kind == "auth"


async def test_timeout_is_retried_then_fails(make_orchestrator: MakeOrchestrator) -> None:
    provider = ScriptedProvider({"i0": ["hang", "hang"]})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(1, timeout_s=0.05, max_attempts=2))
    await job.wait()
    item = (await job.items())[0]
    assert item.status == ItemStatus.FAILED
    assert item.error is not None and item.error.kind == "timeout"
    assert [a.error.kind for a in item.attempts if a.error] == ["timeout", "timeout"]


async def test_corrupt_bytes_are_retried(make_orchestrator: MakeOrchestrator) -> None:
    provider = ScriptedProvider({"i0": ["bad"]})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(1))
    assert (await job.wait()).status == JobStatus.COMPLETED
    item = (await job.items())[0]
    assert item.attempts[0].error is not None
    assert item.attempts[0].error.kind == "bad_response"
    assert len(provider.calls_for("i0")) == 2


async def test_an_image_that_cannot_be_decoded_is_kept_and_fails_in_post_processing(
    make_orchestrator: MakeOrchestrator, workspace: Workspace
) -> None:
    """The slot checks an answer's structure, not its pixels (decoding a large image there
    would hold the next paid request back): pixel data that passes every checksum but cannot
    be decoded is recorded as paid, then fails post-processing, with no second call."""
    from .test_imaging import corrupt_idat_with_good_crc, encode, noise

    provider = ScriptedProvider(image=corrupt_idat_with_good_crc(encode(noise((320, 240)), "PNG")))
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(1))
    assert (await job.wait()).status == JobStatus.FAILED
    item = (await job.items())[0]
    assert item.error is not None and item.error.kind == "postprocess"
    assert "truncated or corrupt" in item.error.message
    assert item.raw_path is not None and workspace.absolute(item.raw_path).is_file()
    assert len(provider.calls) == 1


async def test_interrupt_leaves_job_resumable_and_resume_pays_nothing_twice(
    make_orchestrator: MakeOrchestrator, workspace: Workspace
) -> None:
    provider = ScriptedProvider({"i0": ["ok"], "i1": ["hang"], "i2": ["hang"]})
    async with new_orchestrator(workspace, provider) as first:
        job = await first.submit(make_spec(3))
        await next_event(job, lambda e: isinstance(e, ItemCompleted) and e.item_id == "i0")
        while len(provider.calls) < 3:
            await asyncio.sleep(0.01)
    # leaving the block interrupted the job, as Ctrl-C does
    orch = make_orchestrator(provider)
    record = await orch.handle(job.id).status()
    assert record.status == JobStatus.PENDING and not record.active
    stopped = await orch.journal.item(job.id, "i1")
    assert stopped.status == ItemStatus.PENDING
    assert stopped.attempts[-1].outcome == "interrupted"
    assert await orch.journal.holder(record.key) is None  # the lock is released on the way out

    assert (await (await orch.start(job.id)).wait()).status == JobStatus.COMPLETED
    assert len(provider.calls_for("i0")) == 1  # the finished image was not paid for again
    assert len(provider.calls_for("i1")) == 2


async def test_cancel_request_through_the_handle(make_orchestrator: MakeOrchestrator) -> None:
    provider = ScriptedProvider({"i0": ["hang"], "i1": ["hang"]})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(4, concurrency=2))
    while len(provider.calls) < 2:
        await asyncio.sleep(0.01)
    requested = await job.cancel()
    assert requested.cancel_requested  # a live runner owns the running items
    async with asyncio.timeout(10):
        record = await job.wait()
    assert record.status == JobStatus.CANCELLED
    assert {item.status for item in await job.items()} == {ItemStatus.CANCELLED}
    assert len(provider.calls) == 2  # pending items were never started


async def test_cancel_without_a_runner_cancels_everything_unfinished(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orch = make_orchestrator(ScriptedProvider())
    job = await orch.create(make_spec(2))
    record = await job.cancel()
    assert record.status == JobStatus.CANCELLED and not record.cancel_requested


async def test_explicit_retry_gets_fresh_attempts(make_orchestrator: MakeOrchestrator) -> None:
    provider = ScriptedProvider({"i0": [UnavailableError("500"), UnavailableError("500")]})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(2, max_attempts=2))
    assert (await job.wait()).status == JobStatus.PARTIAL
    assert await job.retry_failed() == ["i0"]
    assert (await (await orch.start(job.id)).wait()).status == JobStatus.COMPLETED
    assert len(provider.calls_for("i0")) == 3
    assert len(provider.calls_for("i1")) == 1


async def test_written_raw_image_is_only_post_processed_on_resume(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider()
    orch = make_orchestrator(provider)
    job = await orch.create(make_spec(1))
    record = await job.status()
    # What a process that died right after recording the generated image leaves behind:
    raw = orch.workspace.raw_path(job.id, "i0", "png")
    data = png_bytes(80, 60)
    atomic_write(raw, data)
    owner = await orch.journal.acquire(record.key, job.id)
    run = orch.journal.run(job.id, owner)
    await run.start()
    assert await run.start_attempt("i0") is not None
    image = RawImage(
        orch.workspace.relative(raw), sha256_hex(data), "image/png", len(data), 80, 60, "s"
    )
    await run.record_image("i0", image)
    await orch.journal.release(owner)

    assert (await (await orch.start(job.id)).wait()).status == JobStatus.COMPLETED
    assert provider.calls == []  # no second paid call
    item = (await job.items())[0]
    assert (item.width, item.height) == (80, 60)


async def test_second_runner_for_the_same_key_conflicts(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider({"i0": ["hang"]})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(1))
    while not provider.calls:
        await asyncio.sleep(0.01)
    other = make_orchestrator(provider)
    with pytest.raises(KeyConflictError) as raised:
        await other.start(job.id)
    assert raised.value.job_id == job.id
    with pytest.raises(KeyConflictError):
        await other.submit(make_spec(1))
    assert [j.id for j in await other.jobs()] == [job.id]  # a refused job is not recorded


async def test_events_are_ordered_and_published(make_orchestrator: MakeOrchestrator) -> None:
    orch = make_orchestrator(ScriptedProvider())
    with orch.bus.subscribe() as subscription:
        job = await orch.submit(make_spec(2))
        await job.wait()
        seen = []
        while (event := subscription.get_nowait()) is not None:
            seen.append(event)
    stored, _ = await orch.journal.events_since(0, job.id)
    assert [e.seq for e in seen] == [e.seq for e in stored]
    assert [e.seq for e in stored] == sorted(e.seq for e in stored)
    assert isinstance(stored[0], JobCreated)
    assert isinstance(stored[-1], JobFinished)


async def test_a_slot_sends_its_next_request_only_once_its_last_image_is_recorded(
    make_orchestrator: MakeOrchestrator,
) -> None:
    """The turn ends once the paid image is stored and its record queued; the next request
    waits for its attempt's start, which commits after that record. So at every call, no image
    already received is still unrecorded (one slot): a crash then loses none."""
    provider = ScriptedProvider()
    orch = make_orchestrator(provider)
    job = await orch.create(make_spec(6, concurrency=1))
    answered, unrecorded = 0, []
    answer = provider.generate

    async def generate(request: GenerateRequest) -> GeneratedImage:
        nonlocal answered
        events = orch.journal.disk.events(job_id=job.id)
        unrecorded.append(answered - sum(isinstance(event, ItemGenerated) for event in events))
        image = await answer(request)
        answered += 1
        return image

    provider.generate = generate  # type: ignore[method-assign]
    assert (await (await orch.start(job.id)).wait()).status == JobStatus.COMPLETED
    assert unrecorded == [0] * 6


async def test_an_image_answered_as_the_run_is_interrupted_is_still_recorded(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider(image=png_bytes(320, 240))  # large: post-processed apart
    orch = make_orchestrator(provider)
    job = await orch.create(make_spec(1))
    provider.on_answer = lambda: orch.task_of(job.id).cancel()  # type: ignore[union-attr]
    await orch.start(job.id)  # Ctrl-C lands just as the paid image arrives
    assert (await job.wait()).status == JobStatus.PENDING
    item = (await job.items())[0]
    assert item.raw_path is not None and item.status == ItemStatus.PENDING
    provider.on_answer = None
    assert (await (await orch.start(job.id)).wait()).status == JobStatus.COMPLETED
    assert len(provider.calls) == 1  # resumed by post-processing the kept image


async def test_a_small_image_answered_as_the_run_is_interrupted_is_finished(
    make_orchestrator: MakeOrchestrator,
) -> None:
    """A small image is stored, post-processed and recorded as one step: an interrupt that
    lands as it arrives waits for that step, so the item ends completed, paid once."""
    provider = ScriptedProvider()
    orch = make_orchestrator(provider)
    job = await orch.create(make_spec(1))
    provider.on_answer = lambda: orch.task_of(job.id).cancel()  # type: ignore[union-attr]
    await orch.start(job.id)
    assert (await job.wait()).status == JobStatus.COMPLETED
    item = (await job.items())[0]
    assert item.status == ItemStatus.COMPLETED and item.image_path and item.thumb_path
    assert orch.workspace.absolute(item.image_path).is_file()
    assert len(provider.calls) == 1


async def test_an_image_answered_as_a_cancel_lands_is_kept_and_not_paid_again(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider(image=png_bytes(320, 240))  # large: post-processed apart
    orch = make_orchestrator(provider)
    job = await orch.create(make_spec(1))
    # The cancel is committed as the answer arrives, before the image is stored (a cancel sent
    # through the writer could land after the item completed, on a busy machine).
    provider.on_answer = lambda: orch.journal.disk.request_cancel(job.id)
    await orch.start(job.id)
    assert (await job.wait()).status == JobStatus.CANCELLED
    item = (await job.items())[0]
    assert item.status == ItemStatus.CANCELLED
    assert item.raw_path is not None and item.cost_usd == 0.01  # paid, so recorded
    provider.on_answer = None
    assert await job.retry_failed() == ["i0"]
    assert (await (await orch.start(job.id)).wait()).status == JobStatus.COMPLETED
    assert len(provider.calls) == 1  # the retry only post-processed the kept image


async def test_an_absurd_retry_after_cools_down_no_longer_than_the_policy_cap(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider({"i0": [RateLimitedError("slow down", retry_after=86_400.0)]})
    orch = make_orchestrator(provider, request_poll_s=60.0)
    job = await orch.submit(make_spec(2, concurrency=1))
    assert (await job.wait()).status == JobStatus.COMPLETED
    # a day-long header does not stall the job for a day: the wait is capped at an hour
    first, second = provider.calls_for("i0")
    assert 3000 < second.at - first.at <= 3600.0 + 1
    assert 3000 < provider.calls_for("i1")[0].at - first.at <= 3600.0 + 1


def test_interrupted_and_cancelled_attempts_do_not_use_up_tries() -> None:
    attempts = tuple(
        AttemptRecord(number=n, started_at=0.0, outcome=outcome)
        for n, outcome in enumerate(["error", "interrupted", "cancelled", "interrupted", "error"])
    )
    item = ItemRecord(
        job_id="j", id="i", index=0, prompt="p", attempts=attempts, created_at=0, updated_at=0
    )
    assert attempts_made(item) == 2
    assert attempts_made(item.model_copy(update={"attempts_before_retry": 1})) == 1


async def test_a_processed_image_lost_since_is_made_again_from_the_raw_one(
    make_orchestrator: MakeOrchestrator, workspace: Workspace
) -> None:
    provider = ScriptedProvider({"i2": [ContentRejectedError("refused")]})
    orchestrator = make_orchestrator(provider)
    job = await orchestrator.submit(make_spec(3))
    assert (await job.wait()).status == JobStatus.PARTIAL
    first, second = await job.item("i0"), await job.item("i1")
    assert first.image_path and first.thumb_path and second.image_path
    image, thumb = workspace.absolute(first.image_path), workspace.absolute(first.thumb_path)
    kept = workspace.absolute(second.image_path).stat().st_mtime_ns
    made = image.read_bytes()
    image.unlink()  # as a power cut can leave them: gone, or there but empty
    thumb.write_bytes(b"")
    await job.retry_and_run(["i2"])  # any run of the job looks
    assert (await job.wait()).status == JobStatus.COMPLETED
    assert image.read_bytes() == made and thumb.stat().st_size > 0
    assert workspace.absolute(second.image_path).stat().st_mtime_ns == kept  # left alone
    assert len(provider.calls_for("i0")) == 1  # from the raw file: no call


async def test_a_link_planted_in_the_job_folder_stops_the_run_before_any_call(
    make_orchestrator: MakeOrchestrator, workspace: Workspace, tmp_path: Path
) -> None:
    provider = ScriptedProvider()
    orchestrator = make_orchestrator(provider)
    job = await orchestrator.create(make_spec(2))
    outside = tmp_path / "outside"
    outside.mkdir()
    workspace.images_dir.mkdir(parents=True, exist_ok=True)
    workspace.job_dir(job.id).symlink_to(outside)
    await orchestrator.start(job.id)
    with pytest.raises(ConfigError, match="is a symbolic link; imagebatch writes only inside"):
        await job.wait()
    assert provider.calls == [] and list(outside.iterdir()) == []
    assert (await job.status()).status == JobStatus.PENDING  # remove the link, start again
    workspace.job_dir(job.id).unlink()
    await orchestrator.start(job.id)
    assert (await job.wait()).status == JobStatus.COMPLETED


async def test_a_reference_swapped_for_a_fifo_fails_its_item_instead_of_hanging(
    make_orchestrator: MakeOrchestrator, tmp_path: Path
) -> None:
    import os

    from orchestrator.spec import parse_spec

    ref = tmp_path / "ref.png"
    ref.write_bytes(png_bytes())
    data = make_spec(2).model_dump(mode="json")
    data["items"][0]["references"] = [str(ref)]
    provider = ScriptedProvider()
    orchestrator = make_orchestrator(provider)
    job = await orchestrator.create(parse_spec(data, "test"))
    ref.unlink()
    os.mkfifo(ref)  # after the checks, before the run: reading it would wait forever
    await orchestrator.start(job.id)
    assert (await job.wait()).status == JobStatus.PARTIAL
    failed = await job.item("i0")
    assert failed.error is not None and failed.error.kind == "unusable_file"
    assert failed.error.message == "ref.png is not a regular file (a pipe or a device?)"
    assert [call.item_id for call in provider.calls] == ["i1"]

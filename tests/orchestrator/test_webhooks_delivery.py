"""Webhooks end to end: a job run through `Orchestrator` POSTs to a real receiver on 127.0.0.1
that verifies every request with the `standardwebhooks` package. Retries reuse the id; a hanging
or dead receiver never holds the job up, and what it did not take is kept and sent again by the
job's next run. Real sockets, so the loop's real clock (no looptime); nothing asserts a duration.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ContentRejectedError
from orchestrator.events import ItemCompleted, JobFinished
from orchestrator.pipeline import PipelineSettings
from orchestrator.service import Orchestrator
from orchestrator.spec import JobSpec, parse_spec
from orchestrator.stages import PostStage
from orchestrator.states import JobStatus
from orchestrator.storage import Workspace
from orchestrator.testing.scripted import ScriptedProvider, make_spec
from orchestrator.webhooks.models import WEBHOOK_EVENTS
from orchestrator.webhooks.policy import DeliverySettings

from .webhook_receiver import Receiver, new_secret, receiver

FAST = {"base_s": 0.01, "cap_s": 0.02, "timeout_s": 5.0, "drain_s": 5.0}

MakeHooked = Callable[..., Orchestrator]


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.fixture
async def hooked(workspace: Workspace, secret: str) -> AsyncIterator[MakeHooked]:
    """`hooked(provider, **delivery)`: an orchestrator whose environment holds the secret and
    allows local receivers; closed after the test."""
    made: list[Orchestrator] = []

    def make(provider: ScriptedProvider, **delivery: Any) -> Orchestrator:
        orchestrator = Orchestrator(
            workspace,
            env={"HOOK_SECRET": secret, "IMAGEBATCH_ALLOW_LOCAL_URLS": "1"},
            settings=PipelineSettings(seed=1, request_poll_s=0.05),
            providers={"scripted": provider},
            post=PostStage(2, processes=False),
            webhooks=DeliverySettings(**{**FAST, **delivery}),
        )
        made.append(orchestrator)
        return orchestrator

    yield make
    for orchestrator in made:
        await orchestrator.aclose()


def with_webhook(spec: JobSpec, url: str, events: tuple[str, ...] = WEBHOOK_EVENTS) -> JobSpec:
    data = spec.model_dump(mode="json")
    data["webhook"] = {"url": url, "secret_env": "HOOK_SECRET", "events": list(events)}
    return parse_spec(data, "test")


def _verified(hook: Receiver) -> None:
    for got in hook.received:
        assert got.error is None, got.error
        assert got.payload == json.loads(got.body)


async def test_every_event_type_arrives_signed(hooked: MakeHooked, secret: str) -> None:
    async with receiver(secret) as hook:
        provider = ScriptedProvider({"i2": [ContentRejectedError("refused")]}, latency_s=0.01)
        orchestrator = hooked(provider)
        job = await orchestrator.submit(with_webhook(make_spec(3), hook.url))
        record = await job.wait()
    assert record.status == JobStatus.PARTIAL
    _verified(hook)
    types = [got.type for got in hook.received]
    assert types[0] == "job.started" and types[-1] == "job.finished"
    assert sorted(types.count(kind) for kind in ("item.completed", "item.failed")) == [1, 2]
    assert "job.progress" in types
    for got in hook.of_type("item.completed"):
        data = got.payload["data"]
        assert data["job_id"] == job.id and data["status"] == "completed"
        assert await asyncio.to_thread(Path(data["image_path"]).is_file)
        assert data["cost_usd"] == pytest.approx(0.01)
    (failed,) = hook.of_type("item.failed")
    assert failed.payload["data"]["error"] == {"kind": "content_rejected", "message": "refused"}
    (finished,) = hook.of_type("job.finished")
    assert finished.payload["data"]["counts"] == {"completed": 2, "failed": 1}
    assert len({got.id for got in hook.received}) == len(hook.received)  # one try each
    assert await job.undelivered_webhooks() == []


async def test_failed_tries_are_retried_with_the_same_id(hooked: MakeHooked, secret: str) -> None:
    async with receiver(secret, answers=[500, 500]) as hook:
        # backoffs long enough that the one-image job ends while its first message waits to be
        # tried again: the tries left go out while the run drains its queue
        orchestrator = hooked(ScriptedProvider(), base_s=0.2, cap_s=0.4)
        spec = with_webhook(make_spec(1), hook.url, ("job.started", "job.finished"))
        job = await orchestrator.submit(spec)
        await job.wait()
    _verified(hook)
    first, second, third, finished = hook.received
    assert [got.answer for got in hook.received] == [500, 500, 204, 204]
    assert first.id == second.id == third.id  # the same webhook-id on every try
    assert first.body == second.body == third.body
    assert first.type == "job.started" and finished.type == "job.finished"
    assert finished.id != first.id
    assert await job.undelivered_webhooks() == []


async def test_a_hanging_receiver_never_holds_the_job_up(hooked: MakeHooked, secret: str) -> None:
    async with receiver(secret, answers=["hang"] * 100) as hook:
        # a try may hang for a minute, and only 3 messages fit in the queue
        orchestrator = hooked(
            ScriptedProvider(latency_s=0.01), timeout_s=60.0, queue_size=3, drain_s=0.1
        )
        job = await orchestrator.submit(with_webhook(make_spec(12, concurrency=2), hook.url))
        record = await job.wait()
        # the whole job ran while the receiver still held the very first request
        assert record.status == JobStatus.COMPLETED
        assert len(hook.received) == 1 and not hook.release.is_set()
    kept = await job.undelivered_webhooks()
    events = orchestrator.journal.disk.events(job_id=job.id)
    finished = [e for e in events if isinstance(e, JobFinished)]
    completed = [e for e in events if isinstance(e, ItemCompleted)]
    assert len(finished) == 1 and len(completed) == 12
    kinds = [k.message.type for k in kept]
    assert kinds.count("item.completed") == 12 and kinds.count("job.finished") == 1
    (hanging,) = [k for k in kept if k.message.id == hook.received[0].id]
    assert hanging.tries == 1  # tried once, and still waiting for an answer
    assert "the run stopped before it was delivered" in hanging.last_error
    assert any("queue of messages to send was full" in k.last_error for k in kept)


async def test_a_dead_receiver_leaves_its_events_kept(hooked: MakeHooked, secret: str) -> None:
    async with receiver(secret, answers=[500] * 100) as hook:
        provider = ScriptedProvider({"i1": ["held"]})  # i1 answers once the test says
        orchestrator = hooked(provider)
        spec = with_webhook(make_spec(2), hook.url, ("item.completed", "job.finished"))
        job = await orchestrator.submit(spec)
        while len(hook.received) < 5:  # i0's message tried five times, while the job runs
            await asyncio.sleep(0.01)
        provider.gate.set()
        assert (await job.wait()).status == JobStatus.COMPLETED
    first = hook.received[0].id
    assert [got.id for got in hook.received[:5]] == [first] * 5
    kept = await job.undelivered_webhooks()
    assert [k.message.type for k in kept] == ["item.completed", "item.completed", "job.finished"]
    assert (kept[0].message.id, kept[0].tries, kept[0].last_error) == (first, 5, "HTTP 500")
    # a receiver that let a message run out of tries is down: the run does not wait out
    # `drain_s` on it, and the last message is kept untried
    assert (kept[2].tries, kept[2].last_error) == (0, "the run stopped before it was delivered")
    assert {got.id for got in hook.received} <= {k.message.id for k in kept}


async def test_kept_messages_go_again_with_the_next_run(hooked: MakeHooked, secret: str) -> None:
    async with receiver(secret, answers=[503] * 100) as hook:
        orchestrator = hooked(ScriptedProvider({"i0": [ContentRejectedError("refused")]}), tries=2)
        spec = with_webhook(make_spec(2), hook.url, ("item.failed", "job.finished"))
        job = await orchestrator.submit(spec)
        first = await job.wait()
        assert first.status == JobStatus.PARTIAL, [(i.id, i.error) for i in await job.items()]
        kept = {k.message.id for k in await job.undelivered_webhooks()}
        assert len(kept) == 2
        hook.answers = hook.answers[: len(hook.received)]  # the receiver is back
        retried = await job.retry_and_run(["i0"])
        assert retried.here
        assert (await job.wait()).status == JobStatus.COMPLETED
    taken = {got.id for got in hook.received if got.answer == 204}
    assert kept <= taken  # sent again, with the ids they had
    assert await job.undelivered_webhooks() == []
    _verified(hook)

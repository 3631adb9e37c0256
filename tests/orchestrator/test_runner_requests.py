"""Requests from anyone while a job runs: a retry (from this process or another) is started by
the running runner; a cancel, of the job or of single items, stops what it names and starts
nothing new for it, not even an automatic retry."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable

import pytest

from orchestrator.attempts import Blocked
from orchestrator.errors import ContentRejectedError, UnavailableError
from orchestrator.events import Event, ItemCompleted, ItemFailed, ItemRetrying
from orchestrator.handle import JobHandle
from orchestrator.items import ItemWork
from orchestrator.states import ItemStatus, JobStatus
from orchestrator.testing.scripted import ScriptedProvider, make_spec, next_event

from .conftest import MakeOrchestrator

pytestmark = pytest.mark.looptime

RETRY_SCRIPT = """
import asyncio, sys
from pathlib import Path
from orchestrator import Orchestrator, Workspace

async def main():
    async with Orchestrator(Workspace(Path(sys.argv[1]))) as orchestrator:
        print(await orchestrator.handle(sys.argv[2]).retry(sys.argv[3:]))

asyncio.run(main())
"""


def completed(item_id: str) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, ItemCompleted) and e.item_id == item_id


def failed(item_id: str) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, ItemFailed) and e.item_id == item_id


async def started_job(make_orchestrator: MakeOrchestrator) -> tuple[ScriptedProvider, JobHandle]:
    """A running job whose i0 has failed for good while i1 is still waiting for its answer."""
    provider = ScriptedProvider({"i0": [ContentRejectedError("no")], "i1": ["held"]})
    job = await make_orchestrator(provider).submit(make_spec(2))
    await next_event(job, failed("i0"))
    return provider, job


async def test_a_failed_item_retried_through_the_handle_is_run_by_the_running_runner(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider, job = await started_job(make_orchestrator)
    assert await job.retry(["i0"]) == ["i0"]
    await next_event(job, completed("i0"))  # while i1 still holds the job open
    assert (await job.status()).status == JobStatus.RUNNING
    provider.gate.set()
    assert (await job.wait()).status == JobStatus.COMPLETED
    assert len(provider.calls_for("i0")) == 2


@pytest.mark.looptime(False)  # a real subprocess: real time
@pytest.mark.parametrize("how", ["api", "cli"])
async def test_a_failed_item_retried_from_another_process_is_run_by_the_running_runner(
    make_orchestrator: MakeOrchestrator, how: str
) -> None:
    provider, job = await started_job(make_orchestrator)
    workspace = str(make_orchestrator(provider).workspace.root)
    if how == "api":
        command = ["-c", RETRY_SCRIPT, workspace, job.id, "i0"]
    else:
        command = ["-m", "orchestrator", "--workspace", workspace, "retry", job.id, "--items", "i0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEBATCH_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, (out, err)
    # The other process has no `scripted` provider: only the runner here can make this call.
    await next_event(job, completed("i0"), within_s=30)
    assert len(provider.calls_for("i0")) == 2
    assert (await job.status()).status == JobStatus.RUNNING
    provider.gate.set()
    assert (await job.wait()).status == JobStatus.COMPLETED


@pytest.mark.parametrize("where", ["here", "elsewhere"])
async def test_a_cancel_during_a_backoff_starts_no_new_attempt(
    make_orchestrator: MakeOrchestrator, where: str
) -> None:
    provider = ScriptedProvider({"i0": [UnavailableError("500")]})
    # "elsewhere": the cancel comes through another orchestrator (its own bus, as another
    # process has) and the runner reads the log too rarely to see it: the journal must stop it.
    orch = make_orchestrator(provider, retry_base_s=10.0, request_poll_s=3600.0)
    canceller = make_orchestrator(provider) if where == "elsewhere" else orch
    for round_ in range(20):  # the cancel lands early, midway and late in the backoff
        job = await orch.submit(make_spec(1, key=f"key-{round_}"))
        retrying = await next_event(job, lambda e: isinstance(e, ItemRetrying))
        assert isinstance(retrying, ItemRetrying) and retrying.delay_s > 1.0
        await asyncio.sleep(retrying.delay_s * 0.95 * round_ / 20)
        await canceller.handle(job.id).cancel()
        record = await job.wait()
        await asyncio.sleep(retrying.delay_s)  # well past the end of the backoff
        assert record.status == JobStatus.CANCELLED, round_
        assert len(provider.calls_for("i0", job.id)) == 1, round_
        item = (await job.items())[0]
        assert item.status == ItemStatus.CANCELLED
        assert [a.outcome for a in item.attempts] == ["error"], round_


async def test_cancelled_items_stop_while_the_others_complete(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider({"i0": ["hang"], "i1": ["held"]})
    job = await make_orchestrator(provider).submit(make_spec(4, concurrency=2))
    while len(provider.calls) < 2:  # i0 and i1 running, i2 and i3 waiting for a slot
        await asyncio.sleep(0.01)
    assert await job.cancel_items(["i0", "i3"]) == ["i0", "i3"]

    def cancelled(e: Event) -> bool:
        return e.item_id == "i0" and e.status == ItemStatus.CANCELLED

    await next_event(job, cancelled)
    await next_event(job, completed("i2"))  # the slot i0 held went to i2
    provider.gate.set()
    assert (await job.wait()).status == JobStatus.PARTIAL
    statuses = {item.id: item.status for item in await job.items()}
    assert statuses == {
        "i0": ItemStatus.CANCELLED,
        "i1": ItemStatus.COMPLETED,
        "i2": ItemStatus.COMPLETED,
        "i3": ItemStatus.CANCELLED,
    }
    assert [call.item_id for call in provider.calls].count("i0") == 1
    assert provider.calls_for("i3") == []


async def test_retry_and_run_leaves_a_running_job_to_its_runner(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider, job = await started_job(make_orchestrator)
    retried = await job.retry_and_run(["i0"])
    assert retried.ids == ["i0"] and not retried.here
    await next_event(job, completed("i0"))
    provider.gate.set()
    assert (await job.wait()).status == JobStatus.COMPLETED


async def test_retry_and_run_starts_a_finished_job_here(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider({"i1": [ContentRejectedError("no")]})
    orch = make_orchestrator(provider)
    job = await orch.submit(make_spec(2))
    assert (await job.wait()).status == JobStatus.PARTIAL
    retried = await job.retry_and_run()
    assert retried.ids == ["i1"] and retried.here
    assert await job.running_here()
    assert (await job.wait()).status == JobStatus.COMPLETED
    assert len(provider.calls_for("i1")) == 2
    assert (await job.retry_and_run()).ids == []  # nothing failed: nothing starts
    assert not await job.running_here()


async def test_a_retry_that_lands_while_the_failed_attempt_is_winding_down_is_not_lost(
    make_orchestrator: MakeOrchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry is committed (and heard by the runner) before the item's failed task has
    ended: the runner starts the item again once that task is over, instead of dropping it."""
    release = asyncio.Event()
    run = ItemWork.run

    async def slow_to_end(
        self: ItemWork, item_id: str, *, due: bool = False
    ) -> float | Blocked | None:
        result = await run(self, item_id, due=due)
        if item_id == "i0" and not release.is_set():
            await release.wait()  # the task stays the runner's until the test lets it go
        return result

    monkeypatch.setattr(ItemWork, "run", slow_to_end)
    provider, job = await started_job(make_orchestrator)
    assert await job.retry(["i0"]) == ["i0"]
    await asyncio.sleep(1.0)  # the runner hears the retry while i0's first task is still there
    release.set()
    await next_event(job, completed("i0"))
    assert len(provider.calls_for("i0")) == 2
    provider.gate.set()
    assert (await job.wait()).status == JobStatus.COMPLETED

"""Paid images are stored by worker processes of their own; a worker that dies loses no image."""

from __future__ import annotations

import asyncio
import os
import signal

from orchestrator.stages import PostStage
from orchestrator.states import JobStatus
from orchestrator.testing.outside import wait_for
from orchestrator.testing.scripted import ScriptedProvider, make_spec

from .conftest import MakeOrchestrator


def _store_workers(post: PostStage) -> list[int]:
    pool = post.stores._pool
    assert pool is not None, "no worker process stored the images"
    return [process.pid for process in pool._processes.values()]  # type: ignore[attr-defined]


async def test_images_are_stored_by_worker_processes_and_one_that_died_loses_none(
    make_orchestrator: MakeOrchestrator,
) -> None:
    post = PostStage(1, processes=True)
    orch = make_orchestrator(ScriptedProvider(), post=post)
    first = await orch.submit(make_spec(2, key="first"))
    assert (await first.wait()).status == JobStatus.COMPLETED
    workers = _store_workers(post)
    assert workers and os.getpid() not in workers
    for pid in workers:  # out of memory, say: the pool is broken
        os.kill(pid, signal.SIGKILL)

    second = await orch.submit(make_spec(3, key="second"))
    assert (await second.wait()).status == JobStatus.COMPLETED
    for item in await second.items():
        assert item.raw_path is not None
        assert orch.workspace.absolute(item.raw_path).stat().st_size > 0
        assert item.image_path is not None
    assert not set(_store_workers(post)) & set(workers), "the broken pool is used again"


async def test_the_store_workers_start_with_the_run_not_at_its_first_image(
    make_orchestrator: MakeOrchestrator,
) -> None:
    """Starting them takes a few hundred ms: the first answer should not wait for that."""
    provider = ScriptedProvider({"i0": ["held"]})
    post = PostStage(1, processes=True)
    orch = make_orchestrator(provider, post=post)
    job = await orch.submit(make_spec(1))
    await asyncio.to_thread(wait_for, "the store workers", lambda: post.stores._pool is not None)
    assert not provider.gate.is_set() and (await job.items())[0].raw_path is None
    provider.gate.set()
    assert (await job.wait()).status == JobStatus.COMPLETED

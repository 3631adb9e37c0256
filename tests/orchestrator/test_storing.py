"""Paid images are stored by worker processes of their own; a worker that dies loses no image."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path

import pytest

from orchestrator.errors import BadResponseError
from orchestrator.spec import OutputSpec
from orchestrator.stages import PostStage
from orchestrator.states import JobStatus
from orchestrator.storage import Workspace
from orchestrator.store_pipes import PipeWorkers
from orchestrator.testing.outside import wait_for
from orchestrator.testing.scripted import ScriptedProvider, make_spec

from .conftest import MakeOrchestrator, new_orchestrator
from .test_stages import write_png


def _store_workers(post: PostStage) -> list[int]:
    pool = post.stores.pool.started
    assert pool is not None, "no worker process stored the images"
    assert 0 not in pool.pids
    return pool.pids


async def test_images_are_stored_by_worker_processes_and_one_that_died_loses_none(
    make_orchestrator: MakeOrchestrator,
) -> None:
    post = PostStage(1, processes=True)
    orch = make_orchestrator(ScriptedProvider(), post=post)
    await asyncio.to_thread(post.stores.pool.start)  # up before the first image
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
    await asyncio.to_thread(wait_for, "a new pool", lambda: post.stores.pool.started is not None)
    assert not set(_store_workers(post)) & set(workers), "the broken pool is used again"


async def test_images_are_stored_in_threads_while_the_store_workers_start(
    make_orchestrator: MakeOrchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starting the workers takes a few hundred ms (more on a loaded machine): every slot that
    waited for them held its turn all that time, at each run's start and after a worker died.
    Here they take as long as the test wants: the job completes meanwhile."""
    post = PostStage(1, processes=True)
    started = threading.Event()
    release = threading.Event()
    start = post.stores.pool.start

    def slow_start() -> PipeWorkers | None:
        started.set()
        release.wait(timeout=60)
        return start()

    monkeypatch.setattr(post.stores.pool, "start", slow_start)
    orch = make_orchestrator(ScriptedProvider(), post=post)
    try:
        job = await orch.submit(make_spec(4))
        async with asyncio.timeout(30):
            assert (await job.wait()).status == JobStatus.COMPLETED
        assert started.is_set() and post.stores.pool.started is None  # still starting
        for item in await job.items():
            assert item.raw_path is not None and item.image_path is not None
    finally:
        release.set()
    await asyncio.to_thread(wait_for, "the pool", lambda: post.stores.pool.started is not None)


async def test_the_store_workers_start_with_the_run_not_at_its_first_image(
    make_orchestrator: MakeOrchestrator,
) -> None:
    """Starting them takes a few hundred ms: the first answer should not wait for that."""
    provider = ScriptedProvider({"i0": ["held"]})
    post = PostStage(1, processes=True)
    orch = make_orchestrator(provider, post=post)
    job = await orch.submit(make_spec(1))
    await asyncio.to_thread(
        wait_for, "the store workers", lambda: post.stores.pool.started is not None
    )
    assert not provider.gate.is_set() and (await job.items())[0].raw_path is None
    provider.gate.set()
    assert (await job.wait()).status == JobStatus.COMPLETED


async def test_a_post_processing_worker_that_dies_leaves_the_store_workers_alone(
    tmp_path: Path,
) -> None:
    """Shutting the stores' pool down would cancel the paid images waiting in it."""
    post = PostStage(1, processes=True)
    try:
        await asyncio.to_thread(post.stores.pool.start)
        stores = post.stores.pool.started
        assert stores is not None
        pool = post.pool.start()
        assert pool is not None
        worker = pool.submit(os.getpid).result(timeout=30)
        os.kill(worker, signal.SIGKILL)
        raw = write_png(tmp_path / "raw.png", 320)
        with pytest.raises(BadResponseError, match="worker died"):
            await post.process(raw, tmp_path / "a.png", tmp_path / "a.webp", OutputSpec())
        assert post.stores.pool.started is stores
        assert await stores.call(os.getpid) in stores.pids
    finally:
        post.close()


async def test_a_workspace_given_relative_is_where_the_images_go_after_a_change_of_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store workers run in the folder their fork server started in, not this one."""
    monkeypatch.chdir(tmp_path)
    post = PostStage(1)
    orch = new_orchestrator(Workspace(Path("ws")), ScriptedProvider(), post=post)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    await asyncio.to_thread(post.stores.pool.start)  # its workers start here, in `elsewhere`
    try:
        job = await orch.submit(make_spec(2))
        assert (await job.wait()).status == JobStatus.COMPLETED
        for item in await job.items():
            assert item.raw_path is not None
            assert (tmp_path / "ws" / item.raw_path).stat().st_size > 0
        assert not (elsewhere / "ws").exists()
    finally:
        await orch.aclose()


async def test_store_workers_that_fail_to_start_are_said_once_and_threads_store_the_images(
    make_orchestrator: MakeOrchestrator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    post = PostStage(1, processes=True)
    tries = []

    def broken_start() -> PipeWorkers | None:
        tries.append(1)
        raise RuntimeError("no fork server today")

    monkeypatch.setattr(post.stores.pool, "start", broken_start)
    orch = make_orchestrator(ScriptedProvider(), post=post)
    job = await orch.submit(make_spec(6, concurrency=3))
    assert (await job.wait()).status == JobStatus.COMPLETED
    assert len(tries) == 1, "started again at every image"
    said = [r.getMessage() for r in caplog.records if "store workers" in r.getMessage()]
    assert said == [
        "storing images in threads: the store workers failed to start "
        "(RuntimeError('no fork server today'))"
    ]


async def test_the_store_workers_calls_and_answers_hold_plain_values_only(
    make_orchestrator: MakeOrchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What crosses a worker's pipe is pickled by the event loop's process and read back there:
    a path or a dataclass in it costs the loop a parse or a field-by-field rebuild per image.
    The images are stored and recorded all the same."""
    crossed: list[object] = []
    real_call = PipeWorkers.call

    async def watched(self: PipeWorkers, function: object, *args: object) -> object:
        crossed.append(args)
        answer: object = await real_call(self, function, *args)  # type: ignore[arg-type]
        crossed.append(answer)
        return answer

    monkeypatch.setattr(PipeWorkers, "call", watched)
    post = PostStage(1, processes=True)
    orch = make_orchestrator(ScriptedProvider(), post=post)
    await asyncio.to_thread(post.stores.pool.start)
    job = await orch.submit(make_spec(3, key="plain"))
    assert (await job.wait()).status == JobStatus.COMPLETED
    assert len(crossed) == 6, "the images were not stored by the worker processes"

    def plain(value: object) -> bool:
        if isinstance(value, tuple):  # a NamedTuple too: rebuilt from its values at once
            return all(plain(part) for part in value)
        if type(value) is dict:
            return all(plain(key) and plain(part) for key, part in value.items())
        return value is None or type(value) in (str, int, bytes, float, bool)

    assert all(plain(value) for value in crossed), crossed
    for item in await job.items():
        assert item.raw_path and item.image_path and item.thumb_path
        assert orch.workspace.absolute(item.thumb_path).stat().st_size > 0
        assert item.raw_path == f"images/{job.id}/raw/{item.id}.png"


async def test_a_store_worker_keeps_the_image_in_the_result_cache_and_a_later_job_hits_it(
    make_orchestrator: MakeOrchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker that stores a paid image links it into the cache and writes its entry: the
    event loop's process makes no trip to the cache's thread for it."""
    from orchestrator.cache import ResultCache

    kept_here: list[str] = []
    real_keep = ResultCache.keep

    async def keep(self: ResultCache, key: str, *args: object, **kwargs: object) -> bool:
        kept_here.append(key)
        return await real_keep(self, key, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ResultCache, "keep", keep)
    provider = ScriptedProvider()
    post = PostStage(1, processes=True)
    orch = make_orchestrator(provider, post=post)
    await asyncio.to_thread(post.stores.pool.start)
    first = await orch.submit(make_spec(3, key="first"))
    assert (await first.wait()).status == JobStatus.COMPLETED
    assert kept_here == []  # the workers kept all three
    cache_images = sorted((orch.workspace.cache_dir / "images").glob("*/*.png"))
    assert len(cache_images) == 3
    raws = {
        orch.workspace.absolute(item.raw_path or "").stat().st_ino for item in await first.items()
    }
    assert {path.stat().st_ino for path in cache_images} == raws  # links, not copies

    second = await orch.submit(make_spec(3, key="second"))
    assert (await second.wait()).status == JobStatus.COMPLETED
    assert len(provider.calls) == 3  # no call for the second job
    assert {item.cached_from for item in await second.items()} == {
        f"{first.id}/i{n}" for n in range(3)
    }


def _keep_one(folder: str, raw: str) -> None:
    from orchestrator.cache_files import keep_here

    data = Path(raw).read_bytes()
    assert keep_here(folder, "ab" + "0" * 62, raw, data, "0" * 64, {"job_id": "j", "item_id": "i"})


def test_the_cache_index_a_worker_wrote_is_closed_when_the_worker_leaves(tmp_path: Path) -> None:
    """SQLite folds its log back into the index when the last connection closes: a worker
    process that left without closing its own left `cache.db-wal` and `cache.db-shm` behind."""
    import multiprocessing

    raw = tmp_path / "raw.png"
    write_png(raw, 8)
    cache = tmp_path / "cache"
    cache.mkdir()  # as the workspace has it
    worker = multiprocessing.get_context("forkserver").Process(
        target=_keep_one, args=(str(cache), str(raw))
    )
    worker.start()
    worker.join(30)
    assert worker.exitcode == 0
    assert sorted(path.name for path in cache.iterdir()) == ["cache.db", "images"]
    assert len(list((cache / "images").glob("ab/*.png"))) == 1

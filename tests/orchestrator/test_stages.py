"""The post-processing stage: which workers an image goes to, and how they behave."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from orchestrator.spec import OutputSpec
from orchestrator.stages import SMALL_PIXELS, PostStage


def write_png(path: Path, side: int) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 30, 60)).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


async def test_a_small_image_is_processed_without_starting_worker_processes(
    tmp_path: Path,
) -> None:
    raw = write_png(tmp_path / "raw.png", 16)
    stage = PostStage(1, processes=True)
    try:
        done = await stage.process(
            raw,
            tmp_path / "out.png",
            tmp_path / "thumb.webp",
            OutputSpec(format="png"),
            pixels=16 * 16,
        )
        assert stage.pool.started is None  # no worker process was started for it
        assert stage._threads is not None
    finally:
        stage.close()
    assert (done.width, done.height) == (16, 16)
    with Image.open(done.image_path) as image:
        assert image.size == (16, 16)


async def test_an_image_of_unknown_or_large_size_goes_to_the_worker_processes(
    tmp_path: Path,
) -> None:
    raw = write_png(tmp_path / "raw.png", 16)
    stage = PostStage(1, processes=True)
    try:
        for n, pixels in enumerate([None, SMALL_PIXELS + 1]):
            await stage.process(
                raw,
                tmp_path / f"out-{n}.png",
                tmp_path / f"thumb-{n}.webp",
                OutputSpec(format="png"),
                pixels=pixels,
            )
            assert stage.pool.started is not None
            assert stage._threads is None
    finally:
        stage.close()


def test_a_worker_ignores_sigint_meant_for_its_parent() -> None:
    """Ctrl-C, or a Jupyter kernel's interrupt, reaches the whole process group; a worker that
    died of it would break the pool under the running job."""
    stage = PostStage(1)
    try:
        pool = stage.pool.start()
        assert pool is not None
        worker = pool.submit(os.getpid).result(timeout=30)
        assert worker != os.getpid()
        os.kill(worker, signal.SIGINT)
        time.sleep(0.3)  # a worker that took the signal would be gone by now
        assert pool.submit(os.getpid).result(timeout=30) == worker
    finally:
        stage.close()


async def test_a_small_image_does_not_wait_for_the_worker_processes_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starting the worker processes takes a few hundred ms, in a thread; a small image that
    comes meanwhile is processed in a thread, and the loop never waits for that start."""
    import orchestrator.workers as workers

    starting, small_done = threading.Event(), threading.Event()
    real_pool = ProcessPoolExecutor  # what `orchestrator.workers` starts

    def slow_pool(*args: Any, **kwargs: Any) -> ProcessPoolExecutor:
        starting.set()
        if not small_done.wait(5):
            raise RuntimeError("the small image waited for the worker processes")
        return real_pool(*args, **kwargs)

    monkeypatch.setattr(workers, "ProcessPoolExecutor", slow_pool)
    raw = write_png(tmp_path / "raw.png", 16)
    stage = PostStage(1, processes=True)
    try:
        large = asyncio.ensure_future(
            stage.process(raw, tmp_path / "a.png", tmp_path / "a.webp", OutputSpec(format="png"))
        )
        await asyncio.to_thread(starting.wait, 5)  # the pool is starting, in a thread
        done = await stage.process(
            raw, tmp_path / "b.png", tmp_path / "b.webp", OutputSpec(format="png"), pixels=256
        )
        small_done.set()
        assert done.width == 16
        assert (await large).width == 16
    finally:
        stage.close()

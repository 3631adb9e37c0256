"""The post-processing stage: which workers an image goes to, and how they behave."""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

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
        assert stage._pool is None  # no worker process was started for it
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
            assert stage._pool is not None
            assert stage._threads is None
    finally:
        stage.close()


def test_a_worker_ignores_sigint_meant_for_its_parent() -> None:
    """Ctrl-C, or a Jupyter kernel's interrupt, reaches the whole process group; a worker that
    died of it would break the pool under the running job."""
    stage = PostStage(1)
    try:
        pool = stage._executor()
        worker = pool.submit(os.getpid).result(timeout=30)
        assert worker != os.getpid()
        os.kill(worker, signal.SIGINT)
        time.sleep(0.3)  # a worker that took the signal would be gone by now
        assert pool.submit(os.getpid).result(timeout=30) == worker
    finally:
        stage.close()

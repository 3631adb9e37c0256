"""The post-processing stage's worker processes."""

from __future__ import annotations

import os
import signal
import time

from orchestrator.stages import PostStage


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

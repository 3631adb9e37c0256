"""What the terminal UI says about an error: what went wrong and what to do next."""

from __future__ import annotations

from orchestrator.errors import DiskFullError, disk_full
from tui.advice import advice


def test_a_full_disk_says_to_free_space_then_resume() -> None:
    error = disk_full("/data/ws", OSError(28, "No space left on device"))
    assert isinstance(error, DiskFullError)
    assert advice(error) == (
        "the disk holding /data/ws is full (No space left on device); free some space, then "
        "open the job from the list and resume it (s). It stopped at once: every image it "
        "recorded is kept."
    )

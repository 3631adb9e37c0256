"""What the terminal UI says about an error: what went wrong and what to do next."""

from __future__ import annotations

import errno

from orchestrator.errors import DiskFullError, disk_full, storage_error
from tui.advice import advice


def test_a_full_disk_says_to_free_space_then_resume() -> None:
    error = disk_full("/data/ws", OSError(28, "No space left on device"))
    assert isinstance(error, DiskFullError)
    assert advice(error) == (
        "the disk holding /data/ws is full (No space left on device); free some space, then "
        "open the job from the list and resume it (s). It stopped at once: every image it "
        "recorded is kept."
    )


def test_a_read_only_file_system_says_what_to_fix_then_resume() -> None:
    error = storage_error("/data/ws", OSError(errno.EROFS, "Read-only file system"))
    assert error is not None
    said = advice(error)
    assert said.startswith("the file system holding /data/ws is read-only")
    assert said.endswith(
        "then open the job from the list and resume it (s). It stopped at once: "
        "every image it recorded is kept."
    )

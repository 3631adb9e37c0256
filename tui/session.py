"""What every screen works with: the app's one `Orchestrator`, how to draw pictures, the clock
the ages are read from, and where spec files are looked for."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import Orchestrator

from .graphics import PictureKind

__all__ = ["SPEC_SUFFIXES", "Session"]

SPEC_SUFFIXES = (".json", ".jsonl", ".txt")
MAX_SPEC_FILES = 200


@dataclass
class Session:
    """The app's shared state: one orchestrator for the app's lifetime."""

    orchestrator: Orchestrator
    pictures: PictureKind
    """How pictures are drawn: Sixel, Kitty, half-cells or Unicode."""
    providers: tuple[str, ...]
    """Provider names the new-batch form offers."""
    now: Callable[[], float] = field(default=time.time)
    """The wall clock ages are measured against (tests freeze it)."""
    stopped_runs: dict[str, str] = field(default_factory=dict)
    """Jobs whose run in this app stopped on an error, and the advice; until run again."""

    @property
    def spec_folders(self) -> tuple[Path, ...]:
        """Where spec files are offered from: the workspace's folder and the workspace."""
        root = self.orchestrator.workspace.root
        return (root.parent, root)

    def spec_files(self) -> list[Path]:
        """Spec files (`.json`, `.jsonl`, `.txt`) in the spec folders, by name (blocking)."""
        found: list[Path] = []
        for folder in self.spec_folders:
            if folder.is_dir():
                found += sorted(
                    path
                    for path in folder.iterdir()
                    if path.suffix.lower() in SPEC_SUFFIXES and path.is_file()
                )
        return found[:MAX_SPEC_FILES]

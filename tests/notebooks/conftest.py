"""Fixtures for the notebook helpers: orchestrators on a temporary workspace, closed after."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import Orchestrator, Workspace
from orchestrator.stages import PostStage

MakeOrchestrator = Callable[..., Orchestrator]


@pytest.fixture
async def make_orchestrator(tmp_path: Path) -> AsyncIterator[MakeOrchestrator]:
    """`make_orchestrator(**options)`: an orchestrator on the test's workspace, post-processing
    in threads; every one made is closed after the test."""
    made: list[Orchestrator] = []

    def make(**options: Any) -> Orchestrator:
        options.setdefault("post", PostStage(2, processes=False))
        orchestrator = Orchestrator(Workspace(tmp_path / "ws"), env={}, **options)
        made.append(orchestrator)
        return orchestrator

    yield make
    for orchestrator in made:
        await orchestrator.aclose()

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.clock import Clock, FakeClock
from orchestrator.pipeline import PipelineSettings
from orchestrator.service import Orchestrator
from orchestrator.storage import Workspace

from .scripted import ScriptedProvider

MakeOrchestrator = Callable[..., Orchestrator]


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_orchestrator(tmp_path: Path) -> Iterator[MakeOrchestrator]:
    """Orchestrators on a workspace in tmp_path, closed after the test."""
    made: list[Orchestrator] = []

    def make(
        provider: ScriptedProvider, clock: Clock | None = None, **kwargs: object
    ) -> Orchestrator:
        settings = PipelineSettings(seed=1, cancel_poll_s=0.02)
        orchestrator = Orchestrator(
            Workspace(tmp_path / "ws"),
            clock=clock,
            settings=settings,
            providers={"scripted": provider},
            **kwargs,  # type: ignore[arg-type]
        )
        made.append(orchestrator)
        return orchestrator

    yield make
    for orchestrator in made:
        orchestrator.close()

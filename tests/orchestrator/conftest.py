from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.pipeline import PipelineSettings
from orchestrator.service import Orchestrator
from orchestrator.stages import PostStage
from orchestrator.storage import Workspace
from orchestrator.testing.scripted import ScriptedProvider

MakeOrchestrator = Callable[..., Orchestrator]


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


def new_orchestrator(
    workspace: Workspace,
    provider: ScriptedProvider,
    *,
    post: PostStage | None = None,
    **settings: Any,
) -> Orchestrator:
    """An orchestrator on `workspace` whose `scripted` provider is `provider`, post-processing
    in threads unless `post=` says otherwise; `settings` override the `PipelineSettings`."""
    orchestrator = Orchestrator(
        workspace,
        # the shared quota paces by the wall clock: its own tests turn it on
        settings=PipelineSettings(
            **{"seed": 1, "request_poll_s": 0.05, "shared_quota": False, **settings}
        ),
        providers={"scripted": provider},
        post=post or PostStage(2, processes=False),
    )
    # The result cache's first opening (its SQLite file made) takes real time, which a test
    # on looptime's compressed clock could mistake for a hang: done here, before the clock runs.
    orchestrator.cache.get("")
    return orchestrator


@pytest.fixture
async def make_orchestrator(workspace: Workspace) -> AsyncIterator[MakeOrchestrator]:
    """`make_orchestrator(provider, **options)`: `new_orchestrator` on the test's workspace;
    every one made is closed after the test (interrupting what it still runs)."""
    made: list[Orchestrator] = []

    def make(provider: ScriptedProvider, **options: Any) -> Orchestrator:
        orchestrator = new_orchestrator(workspace, provider, **options)
        made.append(orchestrator)
        return orchestrator

    yield make
    for orchestrator in made:
        await orchestrator.aclose()

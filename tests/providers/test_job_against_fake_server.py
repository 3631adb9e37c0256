"""A 50-item job through the whole pipeline against the fake server: 20% 5xx, a burst of 429s,
a few corrupt payloads and two refused prompts. Every item ends completed or failed for a stated
reason, and the server's counts show no prompt was generated twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.pipeline import PipelineSettings
from orchestrator.service import Orchestrator
from orchestrator.spec import parse_spec
from orchestrator.states import ItemStatus, JobStatus
from orchestrator.storage import Workspace
from orchestrator.testing.fakeserver import FakeServer

from .conftest import StartServer, env_for

ITEMS = 50
MAX_ATTEMPTS = 6
REFUSED = {7, 33}


def spec(provider: str) -> dict[str, object]:
    items = [
        {"id": f"page-{n:02d}", "prompt": f"page {n}: a {'forbidden ' if n in REFUSED else ''}fox"}
        for n in range(ITEMS)
    ]
    return {
        "key": f"story-{provider}",
        "provider": provider,
        "defaults": {"size": "1024x1024"},
        "limits": {"concurrency": 16, "max_attempts": MAX_ATTEMPTS, "timeout_s": 10},
        "output": {"max_size": "256x256", "thumbnail_px": 64},
        "items": items,
    }


@pytest.mark.parametrize("provider", ["openai", "gemini"])
async def test_fifty_items_with_faults_complete_once_each(
    provider: str, start_server: StartServer, tmp_path: Path
) -> None:
    server: FakeServer = await start_server(
        rate_500=0.2,
        rate_truncated_b64=0.03,
        burst_429=10,
        retry_after_s=0.02,
        reject_pattern="forbidden",
        seed=3,
    )
    async with Orchestrator(
        Workspace(tmp_path / "ws"),
        env=env_for(provider, server),
        settings=PipelineSettings(retry_base_s=0.01, retry_cap_s=0.05, seed=1),
    ) as orchestrator:
        handle = await orchestrator.submit(parse_spec(spec(provider), "test"))
        job = await handle.wait()
        items = await handle.items()

    stats = server.stats
    assert stats.faults["rate_limited"] >= 10 and stats.faults["server_error"] > 0
    assert stats.duplicates() == {}, "no prompt may be generated twice"
    for item in items:
        made = stats.successes[item.prompt]
        assert stats.by_prompt[item.prompt] <= MAX_ATTEMPTS
        if item.status == ItemStatus.COMPLETED:
            assert made == 1 and item.raw_path and item.image_path
        else:
            assert item.status == ItemStatus.FAILED and made == 0
            assert item.error is not None and item.error.kind and item.error.message
    refused = {item.id for item in items if item.error and item.error.kind == "content_rejected"}
    assert refused == {f"page-{n:02d}" for n in REFUSED}
    completed = [item for item in items if item.status == ItemStatus.COMPLETED]
    assert len(completed) == sum(stats.successes.values()) >= ITEMS - len(REFUSED) - 2
    assert job.status == JobStatus.PARTIAL
    assert job.cost_usd > 0


@pytest.mark.parametrize("provider", ["openai", "gemini"])
async def test_a_spent_quota_stops_the_provider_and_a_rate_limit_does_not(
    provider: str, start_server: StartServer, tmp_path: Path
) -> None:
    """OpenAI's `insufficient_quota` and Google's RESOURCE_EXHAUSTED naming a daily quota fail
    the item at once and stop every later call; the same 429 naming a per-minute quota (the
    burst before it) is waited out and retried."""
    server: FakeServer = await start_server(credit=2, burst_429=2, retry_after_s=0.02, seed=5)
    data = {**spec(provider), "items": [{"id": f"i{n}", "prompt": f"p {n}"} for n in range(6)]}
    data["limits"] = {"concurrency": 1, "max_attempts": MAX_ATTEMPTS, "timeout_s": 10}
    async with Orchestrator(
        Workspace(tmp_path / "ws"),
        env=env_for(provider, server),
        settings=PipelineSettings(retry_base_s=0.01, retry_cap_s=0.05, seed=1),
    ) as orchestrator:
        handle = await orchestrator.submit(parse_spec(data, "test"))
        job = await handle.wait()
        items = await handle.items()

    stats = server.stats
    assert stats.faults["rate_limited"] == 2  # retried: the two paid images came after
    assert sum(stats.successes.values()) == 2
    assert stats.faults["no_credit"] == 1  # one refusal, then no call at all
    assert [item.status for item in items].count(ItemStatus.COMPLETED) == 2
    failed = [item for item in items if item.status == ItemStatus.FAILED]
    assert len(failed) == 4 and all(item.error and item.error.kind == "auth" for item in failed)
    assert job.status == JobStatus.PARTIAL

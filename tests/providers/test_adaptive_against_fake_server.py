"""`concurrency: "auto"` end to end: the real openai SDK against a fake server whose hidden cap
answers 429 to a request while 3 others are being answered. The job learns the cap from those
429s: few requests are refused, and the limit it records is near the cap."""

from __future__ import annotations

from pathlib import Path

from orchestrator.pipeline import PipelineSettings
from orchestrator.service import Orchestrator
from orchestrator.spec import parse_spec
from orchestrator.states import JobStatus
from orchestrator.storage import Workspace

from .conftest import StartServer, env_for

IMAGES = 18
CAP = 3


async def test_an_auto_job_learns_a_hidden_cap_with_few_429s(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server(max_concurrent=CAP, latency_s=0.4, retry_after_s=0.05)
    spec = {
        "key": "auto-openai",
        "provider": "openai",
        "limits": {"concurrency": "auto", "max_concurrency": 12, "max_attempts": 8},
        "output": {"max_size": "128x128", "thumbnail_px": 32},
        "items": [{"id": f"page-{n:02d}", "prompt": f"page {n}: a fox"} for n in range(IMAGES)],
    }
    async with Orchestrator(
        Workspace(tmp_path / "ws"),
        env=env_for("openai", server),
        settings=PipelineSettings(retry_base_s=0.01, retry_cap_s=0.05, seed=1),
    ) as orchestrator:
        handle = await orchestrator.submit(parse_spec(spec, "test"))
        job = await handle.wait()

    stats = server.stats
    assert job.status == JobStatus.COMPLETED
    assert stats.duplicates() == {} and sum(stats.successes.values()) == IMAGES
    assert stats.peak_concurrent == CAP  # the cap was reached ...
    # ... and found: a fixed 12 would be refused 9 times in its first round alone
    assert 1 <= stats.faults["rate_limited"] <= 6, stats.faults
    assert job.concurrency is not None and 1 <= job.concurrency <= CAP + 1

"""The budget across a SIGKILL: a real `imagebatch run` against the fake OpenAI API (the real
`openai` SDK over loopback HTTP) is killed with calls in flight, then resumed. The server's own
count of the images it made, which is what the user is billed for, never passes the budget, and
the journal's spent and possibly billed amounts stay within it."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

from .cli_helpers import (
    _env,
    cli,
    item_records,
    only_job_id,
    start_cli,
    stopped_at_end,
    wait_for,
)
from .conftest import ServeFakeApi, fake_api_env

PRICE = 0.011
"""gpt-image-1, 1024x1024, low, in the price table."""
BUDGET = 0.1
ITEMS = 24


def _spec(tmp_path: Path) -> Path:
    spec = tmp_path / "spec.json"
    items = [{"id": f"p{n:02d}", "prompt": f"page {n}: a fox in the snow"} for n in range(ITEMS)]
    spec.write_text(
        json.dumps(
            {
                "key": "budget-crash",
                "provider": "openai",
                "model": "gpt-image-1",
                "defaults": {"size": "1024x1024", "quality": "low"},
                "limits": {"concurrency": 4, "timeout_s": 30, "budget_usd": BUDGET},
                "output": {"max_size": "128x128", "thumbnail_px": 32},
                "items": items,
            }
        ),
        encoding="utf-8",
    )
    return spec


def test_the_budget_holds_across_a_sigkill_and_a_resume(
    tmp_path: Path, serve_fake_api: ServeFakeApi
) -> None:
    server = serve_fake_api(latency_s=0.3, seed=2)
    ws, env = tmp_path / "ws", _env(**fake_api_env(server))
    with stopped_at_end(
        start_cli(ws, "run", str(_spec(tmp_path)), log=tmp_path / "run", env=env)
    ) as proc:
        job_id = wait_for("the job to be recorded", lambda: only_job_id(ws), proc)
        wait_for(
            "two images and calls in flight",
            lambda: (
                sum(i.status == "completed" for i in item_records(ws, job_id)) >= 2
                and any(i.status == "running" for i in item_records(ws, job_id))
            ),
            proc,
        )
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    in_flight = [i.id for i in item_records(ws, job_id) if i.status == "running"]
    assert in_flight, "the kill came with calls in flight"

    resumed = cli(ws, "resume", job_id, "--json", env=env)
    assert resumed.returncode in (3, 4), resumed.stderr
    final = json.loads(resumed.stdout)
    job = final["job"]

    billed = sum(server.stats.successes.values())  # what the provider made, and charges for
    assert billed * PRICE <= BUDGET + 1e-9, (billed, job)
    assert billed <= math.floor(BUDGET / PRICE)
    assert job["budget_usd"] == BUDGET and job["reserved_usd"] == 0.0
    spent = job["cost_usd"] + job["uncertain_usd"]
    assert spent <= BUDGET + 1e-9, job
    items = {item["id"]: item for item in final["items"]}
    assert all(item["status"] in ("completed", "failed") for item in items.values())
    over = [i for i, item in items.items() if item["error"] and item["error"]["kind"] == "budget"]
    completed = [i for i, item in items.items() if item["status"] == "completed"]
    assert over and completed and len(over) + len(completed) == ITEMS
    assert all(items[i]["attempts"] == 0 for i in over if i not in in_flight)

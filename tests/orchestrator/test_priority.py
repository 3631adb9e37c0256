"""`items[].priority`: higher starts first within a job, ties keep the spec's order, and a
resumed job starts what is left in the same order."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from orchestrator.errors import ConfigError
from orchestrator.events import ItemStarted
from orchestrator.spec import JobSpec, parse_spec
from orchestrator.states import JobStatus
from orchestrator.testing.scripted import ScriptedProvider, next_event

from .conftest import MakeOrchestrator

PRIORITIES = {"i0": 0, "i1": 5, "i2": 0, "i3": 5, "i4": -1, "i5": 10}
EXPECTED = ["i5", "i1", "i3", "i0", "i2", "i4"]  # more items than the runner keeps active


def _spec(priorities: Mapping[str, object]) -> JobSpec:
    return parse_spec(
        {
            "key": "priority",
            "provider": "scripted",
            "limits": {"concurrency": 1, "timeout_s": 600},
            "output": {"format": "png", "thumbnail_px": 32},
            "items": [
                {"id": item_id, "prompt": f"prompt {item_id}", "priority": priority}
                for item_id, priority in priorities.items()
            ],
        },
        "test",
    )


async def test_higher_priority_starts_first_and_ties_keep_spec_order(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider()
    job = await make_orchestrator(provider).submit(_spec(PRIORITIES))
    assert (await job.wait()).status == JobStatus.COMPLETED
    assert [call.item_id for call in provider.calls] == EXPECTED


async def test_without_priorities_the_spec_order_holds(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider()
    job = await make_orchestrator(provider).submit(_spec(dict.fromkeys(PRIORITIES, 0)))
    await job.wait()
    assert [call.item_id for call in provider.calls] == list(PRIORITIES)


async def test_a_resumed_job_starts_what_is_left_by_priority(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider({"i1": ["held"]})  # the second to start hangs on the gate
    first = make_orchestrator(provider)
    job = await first.submit(_spec(PRIORITIES))
    await next_event(job, lambda e: isinstance(e, ItemStarted) and e.item_id == "i1")
    async with asyncio.timeout(30):
        while len(provider.calls) < 2:  # the attempt is recorded just before the call
            await asyncio.sleep(0.01)
    await first.aclose()  # interrupted: i1 goes back to pending, the rest never started
    assert [call.item_id for call in provider.calls] == ["i5", "i1"]
    provider.gate.set()
    second = make_orchestrator(provider)
    resumed = await second.start(job.id)
    assert (await resumed.wait()).status == JobStatus.COMPLETED
    assert [call.item_id for call in provider.calls[2:]] == ["i1", "i3", "i0", "i2", "i4"]


@pytest.mark.parametrize("value", ["high", 1.5, True])
def test_priority_is_an_integer(value: object) -> None:
    with pytest.raises(ConfigError, match=r"items\[0\]\.priority"):
        _spec({"i0": value})

"""What the helpers take (specs, prompts, options) and give back (records, a contact sheet)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from orchestrator.errors import ConfigError, KeyConflictError
from orchestrator.notebook import (
    batch_spec,
    contact_sheet,
    jobs,
    results,
    run_batch,
    start_batch,
)

from .conftest import MakeOrchestrator


def test_prompts_become_a_spec_with_ids_a_fresh_key_and_the_options_over_it() -> None:
    spec = batch_spec(["a fox", "a whale"], concurrency=2, size="64x64", provider="mock")
    assert [item.id for item in spec.items] == ["image-01", "image-02"]
    assert spec.key.startswith("notebook-") and spec.name == "a fox"
    assert spec.limits.concurrency == 2 and spec.defaults.size == "64x64"
    assert batch_spec(["a fox"]).key != spec.key  # each run of a cell is a new job
    assert batch_spec(["a fox"], max_rate_limited=1).limits.max_rate_limited == 1


def test_a_spec_file_a_dict_and_another_provider(tmp_path: Path) -> None:
    data = {
        "key": "story",
        "provider": "mock",
        "provider_options": {"seed": 4},
        "items": [{"id": "p1", "prompt": "a cat"}],
    }
    path = tmp_path / "story.json"
    path.write_text(json.dumps(data))
    assert batch_spec(path).provider_options == {"seed": 4}
    assert batch_spec(str(path), output={"format": "png"}).output.format == "png"
    moved = batch_spec(data, provider="openai")
    assert moved.provider == "openai" and moved.provider_options == {} and moved.model is None


@pytest.mark.parametrize(
    ("spec", "options", "message"),
    [
        (["a fox"], {"concurency": 2}, "unknown option 'concurency'"),
        (["a fox"], {"concurrency": "2"}, "limits.concurrency"),
        ([], {}, "non-empty list of prompts"),
        ("missing.json", {}, "missing.json"),
        ([{"id": "x"}], {}, "prompt"),
    ],
)
def test_bad_input_is_one_clear_config_error(
    spec: object, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        batch_spec(spec, **options)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)
    assert caught.value._render_traceback_() == [f"ConfigError: {caught.value}"]


def test_start_batch_outside_an_event_loop_says_where_to_call_it() -> None:
    with pytest.raises(ConfigError, match="notebook cell"):
        start_batch(["a fox"], show=False)


async def test_a_key_another_job_holds_is_said_in_the_widget_and_raised_by_wait(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    slow = {"latency_mean_s": 30.0, "latency_distribution": "fixed"}
    first = start_batch(
        ["a fox"], key="same", orchestrator=orchestrator, show=False, provider_options=slow
    )
    await first.ready()
    second = start_batch(["a fox"], key="same", orchestrator=orchestrator, show=False)
    with pytest.raises(KeyConflictError):
        await second.wait()
    assert second.header.title.value == "the job was not started"
    assert "same" in second.header.message.value
    await (await first.ready()).cancel()
    await first.wait()


async def test_results_and_the_contact_sheet(make_orchestrator: MakeOrchestrator) -> None:
    view = await run_batch(
        [{"id": f"p{n}", "prompt": f"picture {n}"} for n in range(5)],
        orchestrator=make_orchestrator(),
        show=False,
        provider_options={"latency_mean_s": 0.0, "fail_first": {"p2": 1}},
        max_attempts=1,
        size="96x64",
    )
    rows = await results(view)
    assert [(row.id, row.status) for row in rows] == [
        ("p0", "completed"), ("p1", "completed"), ("p2", "failed"), ("p3", "completed"),
        ("p4", "completed"),
    ]  # fmt: skip
    assert rows[2].error is not None and rows[2].error.startswith("server error: ")
    assert rows[2].path is None and rows[0].cost_usd == 0.0
    assert rows[0].prompt == "picture 0" and rows[0].attempts == 1 and not rows[0].cached
    assert rows[0].image().size == (96, 64)
    with pytest.raises(ConfigError, match="'p2' has no image"):
        rows[2].image()
    sheet = await contact_sheet(view, columns=3, tile_px=64)
    assert sheet.size == (3 * 70 + 6, 2 * (64 + 30 + 6) + 6)
    tile = sheet.crop((6 + 2 * 70, 6, 6 + 2 * 70 + 64, 6 + 64))  # p2: grey, its status in text
    assert (229, 231, 235) in {colour for _, colour in tile.getcolors(4096) or []}
    first = sheet.crop((6, 6, 6 + 64, 6 + 64)).convert("RGB")
    with Image.open(rows[0].thumbnail or "") as thumb:
        expected = thumb.convert("RGB").resize((64, 43)).getpixel((32, 20))
    assert first.getpixel((32, 10 + 20)) == pytest.approx(expected, abs=40)


async def test_jobs_lists_the_workspace_newest_first_and_makes_no_workspace(
    make_orchestrator: MakeOrchestrator,
) -> None:
    orchestrator = make_orchestrator()
    assert await jobs(orchestrator=orchestrator) == []
    assert not orchestrator.workspace.root.exists()
    quick = {"latency_mean_s": 0.0}
    first = await run_batch(["a"], orchestrator=orchestrator, show=False, provider_options=quick)
    second = await run_batch(["b"], orchestrator=orchestrator, show=False, provider_options=quick)
    assert [job.id for job in await jobs(orchestrator=orchestrator)] == [
        second.job_id,
        first.job_id,
    ]

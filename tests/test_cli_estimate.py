"""`imagebatch estimate`, and the estimate `create` and `run` print: the price table's price of
each image before anything runs, with no key needed and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.estimate import estimate_spec
from orchestrator.providers.base import ProviderConfig
from orchestrator.spec import parse_spec
from orchestrator.testing.scripted import ScriptedProvider, make_spec

from .cli_helpers import _env, cli, ok, write_spec

OPENAI_SPEC = {
    "key": "estimate-me",
    "provider": "openai",
    "defaults": {"size": "1024x1024", "quality": "medium"},
    "items": [
        {"id": "cover", "prompt": "a cover"},
        {"id": "page-1", "prompt": "a page", "quality": "high"},
        {"id": "page-2", "prompt": "a wide page", "size": "1536x1024"},
    ],
}


def no_keys() -> dict[str, str]:
    env = _env()
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        env.pop(name, None)
    return env


def test_estimate_prices_each_image_and_the_total_without_a_key_or_a_workspace(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(OPENAI_SPEC))
    ws = tmp_path / "ws"
    out = ok(cli(ws, "estimate", str(spec), env=no_keys()))
    # gpt-image-1.5 (the default model): 1024x1024 medium $0.034, high $0.133, 1536x1024 $0.05
    assert out.splitlines() == [
        "cover   $0.034",
        "page-1  $0.133",
        "page-2  $0.050",
        "estimated cost: $0.22 for 3 images (openai gpt-image-1.5, from the price table)",
    ]
    assert not ws.exists()
    data = json.loads(ok(cli(ws, "estimate", str(spec), "--json", "--model", "gpt-image-1")))
    assert data["model"] == "gpt-image-1" and data["unpriced"] == 0
    assert data["items"] == [
        {"id": "cover", "usd": 0.042, "lowest_usd": 0.042, "cached": False},
        {"id": "page-1", "usd": 0.167, "lowest_usd": 0.167, "cached": False},
        {"id": "page-2", "usd": 0.063, "lowest_usd": 0.063, "cached": False},
    ]
    assert data["total_usd"] == 0.272 and data["cached"] == 0  # it opens no workspace
    assert data["lowest_usd"] == 0.272  # every size and quality is set: one price each


def test_a_size_or_quality_left_to_the_provider_is_a_range_from_its_cheapest_to_its_dearest(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "spec.json"
    left = {**OPENAI_SPEC, "defaults": {"quality": "auto"}}  # and no size: the provider picks
    spec.write_text(json.dumps(left))
    out = ok(cli(tmp_path / "ws", "estimate", str(spec), env=no_keys()))
    # gpt-image-1.5: low 1024x1024 $0.009, high 1024x1024 $0.133, high 1536x1024 $0.20;
    # page-1 names its quality (high), page-2 its size (1536x1024: low $0.013)
    assert out.splitlines() == [
        "cover   $0.009 to $0.200",
        "page-1  $0.133 to $0.200",
        "page-2  $0.013 to $0.200",
        "estimated cost: $0.15 to $0.60 for 3 images (openai gpt-image-1.5, from the price "
        "table: the provider picks the size or quality the spec leaves unset or auto)",
    ]
    data = json.loads(ok(cli(tmp_path / "ws", "estimate", str(spec), "--json", env=no_keys())))
    assert (data["lowest_usd"], data["total_usd"]) == (0.155, 0.6)
    assert [item["lowest_usd"] for item in data["items"]] == [0.009, 0.133, 0.013]


def test_a_model_the_price_table_does_not_know_is_unpriced_not_guessed(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps({**OPENAI_SPEC, "model": "gpt-image-9", "allow_unknown_model": True})
    )
    out = ok(cli(tmp_path / "ws", "estimate", str(spec), env=no_keys()))
    assert "cover   no known price" in out
    assert out.splitlines()[-1] == (
        "estimated cost: cost unknown for 3 images (openai gpt-image-9, from the price table); "
        "3 without a known price"
    )


def test_create_and_run_say_the_estimate_and_put_it_in_their_json(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path, items=2)
    created = cli(ws, "create", str(spec))
    job = ok(created).strip()
    assert job.startswith("story-1-")  # stdout stays the job id alone, for scripts
    assert "estimated cost: $0.00 for 2 images (mock mock-1, from the price table)" in (
        created.stderr
    )
    created_json = json.loads(
        ok(cli(ws, "create", str(write_spec(tmp_path, items=2, key="k2")), "--json"))
    )
    assert created_json["estimate"]["total_usd"] == 0.0
    ran = json.loads(ok(cli(ws, "run", str(write_spec(tmp_path, items=2, key="k3")), "--json")))
    assert ran["estimate"] == {
        "provider": "mock",
        "model": "mock-1",
        "total_usd": 0.0,
        "lowest_usd": 0.0,
        "unpriced": 0,
        "cached": 0,
        "items": [
            {"id": "img-1", "usd": 0.0, "lowest_usd": 0.0, "cached": False},
            {"id": "img-2", "usd": 0.0, "lowest_usd": 0.0, "cached": False},
        ],
    }
    assert ran["job"]["status"] == "completed"


def test_a_bad_spec_is_one_line_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({**OPENAI_SPEC, "limits": {"concurrency": "3"}}))
    result = cli(tmp_path / "ws", "estimate", str(spec))
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "concurrency" in result.stderr


def test_a_provider_that_names_no_default_model_leaves_every_item_unpriced() -> None:
    def plugin(config: ProviderConfig) -> ScriptedProvider:  # a factory with no default_model
        return ScriptedProvider()

    estimate = estimate_spec(make_spec(2), providers={"scripted": plugin})
    assert estimate.model is None and estimate.unpriced == 2 and estimate.total_usd == 0.0
    named = parse_spec({**OPENAI_SPEC, "model": "gpt-image-1-mini"}, "test")
    assert estimate_spec(named).total_usd == 0.011 + 0.036 + 0.015


def test_status_shows_a_jobs_budget_and_what_it_spent(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    spec = write_spec(tmp_path, items=2, limits={"concurrency": 2, "budget_usd": 0.5})
    ok(cli(ws, "run", str(spec)))
    text = ok(cli(ws, "status"))
    assert "budget $0.50: $0.00 spent" in text
    data = json.loads(ok(cli(ws, "status", "--json")))["job"]
    assert (data["budget_usd"], data["reserved_usd"], data["uncertain_usd"]) == (0.5, 0.0, 0.0)

"""Prompt presets: the provider is sent the preset's wording, the journal keeps the prompt sent,
an item's own preset wins, a user's file adds presets, an unknown one is refused before
anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError
from orchestrator.presets import ENV_VAR, final_prompts, load_presets
from orchestrator.service import Orchestrator
from orchestrator.spec import JobSpec, parse_spec
from orchestrator.states import JobStatus
from orchestrator.storage import Workspace
from orchestrator.testing.scripted import ScriptedProvider

from .conftest import MakeOrchestrator


def _spec(defaults: dict[str, object], *items: dict[str, object]) -> JobSpec:
    return parse_spec(
        {
            "key": "presets",
            "provider": "scripted",
            "defaults": defaults,
            "output": {"format": "png", "thumbnail_px": 32},
            "items": list(items),
        },
        "test",
    )


SPEC = _spec(
    {"preset": "watercolor"},
    {"id": "a", "prompt": "a fox"},
    {"id": "b", "prompt": "a crow", "preset": "noir"},
    {"id": "c", "prompt": "a hare", "preset": "none"},
)


async def test_the_provider_is_sent_the_presets_wording(
    make_orchestrator: MakeOrchestrator,
) -> None:
    provider = ScriptedProvider()
    job = await make_orchestrator(provider).submit(SPEC)
    assert (await job.wait()).status == JobStatus.COMPLETED
    presets = load_presets({})
    sent = {call.item_id: call.prompt for call in provider.calls}
    assert sent == {
        "a": presets["watercolor"].replace("{prompt}", "a fox"),
        "b": presets["noir"].replace("{prompt}", "a crow"),
        "c": "a hare",
    }
    assert sent["a"].startswith("a watercolor painting of a fox")
    records = {item.id: item for item in await job.items()}
    assert {item_id: item.final_prompt for item_id, item in records.items()} == sent
    assert records["a"].prompt == "a fox"  # what the user wrote stays as written


def test_a_users_file_adds_and_replaces_presets(tmp_path: Path) -> None:
    own = tmp_path / "presets.json"
    own.write_text(
        json.dumps({"_note": "mine", "neon": "{prompt} in neon", "noir": "dark {prompt}"})
    )
    env = {ENV_VAR: str(own)}
    spec = _spec(
        {"preset": "neon"},
        {"id": "a", "prompt": "a fox"},
        {"id": "b", "prompt": "x", "preset": "noir"},
    )
    assert final_prompts(spec, env) == {"a": "a fox in neon", "b": "dark x"}
    assert "photo" in load_presets(env)  # the built-in ones stay


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read it"),
        ("{not json", "invalid JSON"),
        ('["photo"]', "must be a JSON object"),
        ('{"flat": "no placeholder"}', "must be a text with {prompt}"),
    ],
)
def test_a_bad_users_file_is_one_clear_error(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    own = tmp_path / "presets.json"
    if content is not None:
        own.write_text(content)
    with pytest.raises(ConfigError, match="IMAGEBATCH_PRESETS") as error:
        final_prompts(SPEC, {ENV_VAR: str(own)})
    assert expected in str(error.value)


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        (_spec({"preset": "oil"}, {"id": "a", "prompt": "x"}), "defaults.preset"),
        (
            _spec({}, {"id": "a", "prompt": "x"}, {"id": "b", "prompt": "y", "preset": "oil"}),
            "items[1].preset",
        ),
    ],
)
async def test_an_unknown_preset_is_refused_before_anything_is_written(
    tmp_path: Path, spec: JobSpec, where: str
) -> None:
    workspace = Workspace(tmp_path / "ws")
    async with Orchestrator(workspace, providers={"scripted": ScriptedProvider()}) as orch:
        with pytest.raises(ConfigError) as error:
            await orch.create(spec)
    message = str(error.value)
    assert message.startswith(f"{where}: no preset 'oil'; known: ")
    assert "noir" in message and "watercolor" in message and "\n" not in message
    assert not workspace.root.exists()

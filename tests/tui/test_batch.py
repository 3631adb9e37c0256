"""The new-batch form's values checked by the spec's own rules, each refusal on its field."""

from __future__ import annotations

import pytest

from orchestrator import ConfigError, parse_spec
from tui.batch import BatchForm, FieldError, as_field_error, build_spec


def test_prompts_one_per_line_with_images_per_prompt() -> None:
    spec = build_spec(BatchForm(name="Fox book", prompts="a fox\n\n# note\na hen\n", count="2"))
    assert [item.id for item in spec.items] == [
        "item-001-1",
        "item-001-2",
        "item-002-1",
        "item-002-2",
    ]
    assert spec.key.startswith("fox-book-") and spec.name == "Fox book"
    assert spec.provider == "mock"


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        (BatchForm(prompts=""), "prompts", "must not be empty"),
        (BatchForm(prompts="a", concurrency="0"), "concurrency", "from 1 to 64, or 'auto'"),
        (BatchForm(prompts="a", concurrency="many"), "concurrency", "a whole number"),
        (BatchForm(prompts="a", size="big"), "size", "1024x1024"),
        (BatchForm(prompts="a", options="{seed: 1}"), "options", "not valid JSON"),
        (BatchForm(prompts="a", options="[1]"), "options", "JSON object"),
        (BatchForm(prompts="a", count="0"), "count", "from 1 to 100"),
    ],
)
def test_a_refused_value_names_its_field(form: BatchForm, field: str, words: str) -> None:
    with pytest.raises(FieldError) as refused:
        build_spec(form)
    assert refused.value.field == field
    assert words in str(refused.value)


def test_a_spec_file_keeps_its_key_and_the_form_overrides_what_it_sets() -> None:
    file_spec = parse_spec(
        {
            "key": "story-1",
            "provider": "mock",
            "provider_options": {"seed": 3},
            "items": [{"id": "p1", "prompt": "a cat"}],
        },
        "story.json",
    )
    spec = build_spec(BatchForm(spec_file="story.json", concurrency="2"), file_spec)
    assert spec.key == "story-1" and spec.limits.concurrency == 2
    assert spec.provider_options == {"seed": 3}
    other = build_spec(BatchForm(spec_file="story.json", provider="openai"), file_spec)
    assert other.provider == "openai" and other.provider_options == {}  # written for the mock


def test_preflight_refusals_land_on_their_fields() -> None:
    missing_key = ConfigError("openai: OPENAI_API_KEY is not set", option="provider")
    assert as_field_error(missing_key, with_file=False).field == "provider"
    model = ConfigError("model: mock has no model 'x'; known: mock-1")
    assert as_field_error(model, with_file=False).field == "model"
    size = ConfigError("items[0] (item-001): size '9000x9000': the mock draws at most 2048x2048")
    assert as_field_error(size, with_file=False).field == "size"

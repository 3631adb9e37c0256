"""The job spec: loading JSON, JSONL and text files, validation, and command-line overrides."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator import specfile as spec_module
from orchestrator.errors import ConfigError
from orchestrator.spec import JobSpec, apply_overrides, parse_spec
from orchestrator.specfile import load_spec

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _spec(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"key": "story-1", "items": [{"id": "page-1", "prompt": "a cat"}]}
    data.update(extra)
    return data


def _error(data: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_spec(data, "spec.json")
    message = str(caught.value)
    assert "\n" not in message, "a spec error is one line"
    assert message.startswith("spec.json: ")
    return message


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ file formats


def test_concurrency_auto_takes_a_maximum() -> None:
    items = [{"id": "a", "prompt": "x"}]
    auto = parse_spec({"key": "k", "items": items, "limits": {"concurrency": "auto"}}, "s")
    assert auto.limits.adaptive and auto.limits.most_in_flight == 32
    limits = {"concurrency": "auto", "max_concurrency": 12}
    capped = parse_spec({"key": "k", "items": items, "limits": limits}, "s")
    assert capped.limits.most_in_flight == 12
    fixed = apply_overrides(capped, concurrency=4)  # a fixed number drops auto's maximum
    assert (fixed.limits.concurrency, fixed.limits.max_concurrency) == (4, None)
    assert not fixed.limits.adaptive and fixed.limits.most_in_flight == 4
    assert apply_overrides(fixed, concurrency="auto").limits.most_in_flight == 32


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"concurrency": "Auto"}, "limits.concurrency: concurrency must be a whole number"),
        ({"concurrency": "8"}, "limits.concurrency: concurrency must be a whole number"),
        ({"concurrency": True}, "limits.concurrency: concurrency must be a whole number"),
        ({"concurrency": 3.0}, "limits.concurrency: concurrency must be a whole number"),
        ({"concurrency": 65}, "from 1 to 64, or 'auto'"),
        ({"concurrency": "auto", "max_concurrency": 1}, "limits.max_concurrency: "),
        ({"concurrency": "auto", "max_concurrency": 99}, "from 2 to 64"),
        ({"concurrency": "auto", "max_concurrency": 8.0}, "limits.max_concurrency: "),
        ({"concurrency": 5, "max_concurrency": 8}, "max_concurrency goes only with"),
        ({"max_concurrency": 8}, "limits: max_concurrency goes only with"),
    ],
)
def test_bad_concurrency_is_one_line_naming_the_field(
    limits: dict[str, Any], expected: str
) -> None:
    spec = {"key": "k", "items": [{"id": "a", "prompt": "x"}], "limits": limits}
    with pytest.raises(ConfigError) as caught:
        parse_spec(spec, "spec.json")
    message = str(caught.value)
    assert expected in message and "\n" not in message and "more problem" not in message


def test_json_file(tmp_path: Path) -> None:
    data = _spec(
        name="Story one",
        provider="mock",
        model="mock-1",
        provider_options={"seed": 3},
        defaults={"size": "256x256", "quality": "low"},
        limits={"concurrency": 2, "rate_per_minute": 30, "timeout_s": 9, "max_attempts": 4},
        output={"format": "png", "max_size": "128x128", "fit": "contain"},
        items=[
            {"id": "page-1", "prompt": "a cat"},
            {"id": "page-2", "prompt": "a dog", "size": "512x256", "seed": 5},
        ],
    )
    spec = load_spec(_write(tmp_path, "story.json", json.dumps(data)))
    assert spec.key == "story-1"
    assert spec.name == "Story one"
    assert spec.provider == "mock"
    assert spec.model == "mock-1"
    assert spec.provider_options == {"seed": 3}
    assert spec.defaults.size == "256x256"
    assert spec.limits.concurrency == 2
    assert spec.limits.rate_per_minute == 30
    assert spec.limits.timeout_s == 9
    assert spec.limits.max_attempts == 4
    assert spec.output.format == "png"
    assert [(i.id, i.prompt) for i in spec.items] == [("page-1", "a cat"), ("page-2", "a dog")]
    assert spec.items[1].size == "512x256"
    assert spec.items[1].seed == 5


def test_json_fixture_file() -> None:
    spec = load_spec(FIXTURES / "spec_small.json")
    assert spec.key == "fixture-small"
    assert [item.id for item in spec.items] == ["a", "b", "c"]


def test_json_list_is_a_list_of_items_and_the_key_comes_from_the_file_name(
    tmp_path: Path,
) -> None:
    items = [{"id": "x", "prompt": "one"}, {"id": "y", "prompt": "two"}]
    spec = load_spec(_write(tmp_path, "My Story!.json", json.dumps(items)))
    assert [item.id for item in spec.items] == ["x", "y"]
    assert spec.key == "My-Story"
    assert spec.name == "My Story!"


def test_jsonl_file_is_one_item_per_line(tmp_path: Path) -> None:
    text = (
        '{"id": "p1", "prompt": "first"}\n'
        "\n"
        '{"id": "p2", "prompt": "second", "size": "64x64"}\n'
        '{"id": "p3", "prompt": "third"}\n'
    )
    spec = load_spec(_write(tmp_path, "deck.jsonl", text))
    assert [(i.id, i.prompt) for i in spec.items] == [
        ("p1", "first"),
        ("p2", "second"),
        ("p3", "third"),
    ]
    assert spec.items[1].size == "64x64"
    assert spec.key == "deck"
    assert spec.provider == "mock"


def test_jsonl_bad_line_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "deck.jsonl", '{"id": "p1", "prompt": "ok"}\n{"id": "p2", \n')
    with pytest.raises(ConfigError, match=r"line 2: invalid JSON"):
        load_spec(path)


def test_jsonl_misspelt_item_field_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "deck.jsonl", '{"id": "p1", "prompt": "ok", "sise": "64x64"}\n')
    with pytest.raises(ConfigError, match=r"items\[0\]\.sise: unknown field"):
        load_spec(path)


def test_text_file_is_one_prompt_per_line(tmp_path: Path) -> None:
    text = "a red fox\n\n   \n# a comment\na blue whale  \na green owl\n"
    spec = load_spec(_write(tmp_path, "animals.txt", text))
    assert [(i.id, i.prompt) for i in spec.items] == [
        ("item-001", "a red fox"),
        ("item-002", "a blue whale"),
        ("item-003", "a green owl"),
    ]
    assert spec.key == "animals"


def test_text_file_with_many_lines_keeps_ids_in_order(tmp_path: Path) -> None:
    text = "".join(f"prompt number {n}\n" for n in range(1, 121))
    spec = load_spec(_write(tmp_path, "many.txt", text))
    assert spec.items[0].id == "item-001"
    assert spec.items[99].id == "item-100"
    assert spec.items[-1].id == "item-120"
    assert len({item.id for item in spec.items}) == 120


def test_text_file_without_prompts_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no prompts found"):
        load_spec(_write(tmp_path, "empty.txt", "\n# only a comment\n\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_spec(tmp_path / "nope.json")


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.json", '{\n  "key": "a",\n  "items": [,]\n}\n')
    with pytest.raises(ConfigError, match=r"line 3: invalid JSON"):
        load_spec(path)


def test_json_that_is_not_an_object(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="JSON object"):
        load_spec(_write(tmp_path, "bad.json", '"just a string"'))


def test_references_are_resolved_relative_to_the_spec(tmp_path: Path) -> None:
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "cat.png").write_bytes(b"not read here")
    data = _spec(items=[{"id": "a", "prompt": "x", "references": ["refs/cat.png"]}])
    spec = load_spec(_write(tmp_path, "s.json", json.dumps(data)))
    assert spec.items[0].references == (str((tmp_path / "refs" / "cat.png").resolve()),)


def test_missing_reference_is_an_error(tmp_path: Path) -> None:
    data = _spec(items=[{"id": "a", "prompt": "x", "references": ["gone.png"]}])
    message = r"items\[0\]\.references: 'gone.png' is neither an item id of this job nor a file"
    with pytest.raises(ConfigError, match=message):
        load_spec(_write(tmp_path, "s.json", json.dumps(data)))


# ------------------------------------------------------------ which format is read

JSON_SPEC = json.dumps(_spec(), indent=2)


def _load_error(path: Path, **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load_spec(path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message, "a spec error is one line"
    return message


@pytest.mark.parametrize("name", ["spec.yaml", "spec.yml", "spec.toml", "spec.json.bak", "spec"])
def test_a_file_of_another_format_is_refused_not_read_as_prompts(tmp_path: Path, name: str) -> None:
    message = _load_error(_write(tmp_path, name, JSON_SPEC))
    assert message.startswith(f"{tmp_path / name}: ")
    assert ".json, .jsonl and .txt" in message
    assert "say which format it is" in message  # the CLI adds its flag (tests/test_cli_specs.py)


@pytest.mark.parametrize("name", ["prompts.txt", "PROMPTS.TXT"])
@pytest.mark.parametrize(
    "text", [JSON_SPEC, "\n\n   [\n" + JSON_SPEC + "\n]\n", "\ufeff" + JSON_SPEC]
)
def test_a_txt_file_that_looks_like_json_is_refused_with_a_hint(
    tmp_path: Path, name: str, text: str
) -> None:
    message = _load_error(_write(tmp_path, name, text))
    assert "looks like JSON" in message
    assert "rename it to .json" in message
    assert "say the format is text" in message


def test_format_text_reads_a_json_looking_txt_as_prompts(tmp_path: Path) -> None:
    path = _write(tmp_path, "lines.txt", "[draft] a cat\n{braces} a dog\n")
    spec = load_spec(path, fmt="text")
    assert [item.prompt for item in spec.items] == ["[draft] a cat", "{braces} a dog"]


@pytest.mark.parametrize("name", ["spec.yaml", "spec", "spec.TXT"])
def test_format_overrides_the_extension(tmp_path: Path, name: str) -> None:
    spec = load_spec(_write(tmp_path, name, JSON_SPEC), fmt="json")
    assert spec.key == "story-1"
    assert [item.id for item in spec.items] == ["page-1"]


def test_upper_case_extensions_are_read(tmp_path: Path) -> None:
    assert load_spec(_write(tmp_path, "A.JSON", JSON_SPEC)).key == "story-1"
    jsonl = load_spec(_write(tmp_path, "B.JsonL", '{"id": "p1", "prompt": "x"}\n'))
    assert [item.id for item in jsonl.items] == ["p1"]
    text = load_spec(_write(tmp_path, "C.Txt", "a cat\n"))
    assert [item.prompt for item in text.items] == ["a cat"]


@pytest.mark.parametrize(
    ("fmt", "data", "ids"),
    [
        ("json", JSON_SPEC, ["page-1"]),
        ("jsonl", '{"id": "p1", "prompt": "x"}\n{"id": "p2", "prompt": "y"}\n', ["p1", "p2"]),
        ("text", "a cat\na dog\n", ["item-001", "item-002"]),
    ],
)
def test_standard_input_in_each_format(fmt: Any, data: str, ids: list[str]) -> None:
    spec = load_spec(Path("-"), fmt=fmt, stdin=io.BytesIO(data.encode()))
    assert [item.id for item in spec.items] == ids


def test_standard_input_is_keyed_and_named_stdin() -> None:
    spec = load_spec(Path("-"), fmt="text", stdin=io.BytesIO(b"a cat\n"))
    assert spec.key == "stdin"
    assert spec.name == "stdin"


def test_standard_input_errors_name_stdin() -> None:
    with pytest.raises(ConfigError, match=r"^stdin: line 1: invalid JSON"):
        load_spec(Path("-"), fmt="json", stdin=io.BytesIO(b"{oops"))


def test_standard_input_references_are_relative_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ref.png").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    data = _spec(items=[{"id": "a", "prompt": "x", "references": ["ref.png"]}])
    spec = load_spec(Path("-"), fmt="json", stdin=io.BytesIO(json.dumps(data).encode()))
    assert spec.items[0].references == (str((tmp_path / "ref.png").resolve()),)


def test_standard_input_without_a_format_is_refused() -> None:
    stdin = io.BytesIO(JSON_SPEC.encode())
    message = _load_error(Path("-"), stdin=stdin)
    assert "standard input" in message
    assert "say which format it is (json, jsonl or text)" in message
    assert stdin.tell() == 0, "nothing is read before the format is known"


def test_a_spec_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as file:
        file.truncate(spec_module.MAX_SPEC_BYTES + 1)  # sparse: no disk, no time
    message = _load_error(path)
    assert "larger than 64 MB" in message


def test_standard_input_over_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spec_module, "MAX_SPEC_BYTES", 1024 * 1024)
    stdin = io.BytesIO(b"a cat\n" * 200_000)
    message = _load_error(Path("-"), fmt="text", stdin=stdin)
    assert message.startswith("stdin: ")
    assert "larger than 1 MB" in message
    assert stdin.tell() == 1024 * 1024 + 1, "reads stop just past the limit"


def test_a_spec_that_is_not_utf8_says_so(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("un caf\xe9\n".encode("latin-1"))
    assert "not UTF-8" in _load_error(path)


# ------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (_spec(provder="mock"), "provder"),
        (_spec(limits={"concurency": 2}), "limits.concurency"),
        (_spec(defaults={"sise": "64x64"}), "defaults.sise"),
        (_spec(output={"formt": "png"}), "output.formt"),
        (_spec(items=[{"id": "a", "prompt": "x", "qualty": "hd"}]), "items[0].qualty"),
    ],
)
def test_misspelt_optional_field_is_named(data: dict[str, Any], named: str) -> None:
    message = _error(data)
    assert f"{named}: unknown field" in message


@pytest.mark.parametrize(
    ("data", "misspelt"),
    [
        ({"key": "k", "items": [{"id": "a", "promt": "x"}]}, "promt"),
        ({"key": "k", "itmes": [{"id": "a", "prompt": "x"}]}, "itmes"),
    ],
)
def test_misspelt_required_field_is_named(data: dict[str, Any], misspelt: str) -> None:
    """The misspelling itself is what the user must see, not only "prompt is missing"."""
    assert misspelt in _error(data)


@pytest.mark.parametrize(
    "item_id",
    ["a", "page-1", "page_1", "v1.2", "A" * 64, "x.y.z", "0"],
)
def test_good_item_ids(item_id: str) -> None:
    spec = parse_spec(_spec(items=[{"id": item_id, "prompt": "x"}]), "spec.json")
    assert spec.items[0].id == item_id


@pytest.mark.parametrize(
    "item_id",
    [
        "",
        "A" * 65,
        "..",
        "../x",
        "a/b",
        "a\\b",
        "a..b",
        ".hidden",
        ".",
        "a b",
        "é",
        "a\x00b",
        "page:1",
        "a\n",  # `$` alone would let one trailing newline through into a file name
    ],
)
def test_bad_item_ids(item_id: str) -> None:
    message = _error(_spec(items=[{"id": item_id, "prompt": "x"}]))
    assert "items[0].id" in message
    assert "1-64" in message


def test_item_id_must_be_a_string() -> None:
    assert "items[0].id" in _error(_spec(items=[{"id": 7, "prompt": "x"}]))


def test_duplicate_ids() -> None:
    items = [{"id": "a", "prompt": "x"}, {"id": "b", "prompt": "y"}, {"id": "a", "prompt": "z"}]
    message = _error(_spec(items=items))
    assert "'a'" in message
    assert "twice" in message


def test_no_items() -> None:
    assert "items" in _error(_spec(items=[]))


def test_missing_items() -> None:
    assert "items: required field is missing" in _error({"key": "k"})


def test_blank_prompt() -> None:
    assert "items[0].prompt" in _error(_spec(items=[{"id": "a", "prompt": "   "}]))


def test_missing_key_in_python_data() -> None:
    assert "key: required field is missing" in _error({"items": [{"id": "a", "prompt": "x"}]})


@pytest.mark.parametrize("key", ["", "a b", "k/1", "x" * 129, "k\n"])
def test_bad_key(key: str) -> None:
    assert "key" in _error(_spec(key=key))


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"concurrency": 0}, "limits.concurrency"),
        ({"concurrency": 65}, "limits.concurrency"),
        ({"rate_per_minute": 0}, "limits.rate_per_minute"),
        ({"rate_per_minute": -1}, "limits.rate_per_minute"),
        ({"timeout_s": 0}, "limits.timeout_s"),
        ({"max_attempts": 0}, "limits.max_attempts"),
        ({"max_attempts": 21}, "limits.max_attempts"),
        ({"concurrency": "many"}, "limits.concurrency"),
    ],
)
def test_bad_limits(limits: dict[str, Any], field: str) -> None:
    assert field in _error(_spec(limits=limits))


@pytest.mark.parametrize(
    ("section", "value", "field", "kind"),
    [
        ("limits", {"max_attempts": "2"}, "limits.max_attempts", "integer"),
        ("limits", {"timeout_s": "5"}, "limits.timeout_s", "number"),
        ("limits", {"timeout_s": True}, "limits.timeout_s", "number"),
        ("limits", {"rate_per_minute": "30"}, "limits.rate_per_minute", "number"),
        ("limits", {"rate_per_minute": True}, "limits.rate_per_minute", "number"),
        ("defaults", {"seed": True}, "defaults.seed", "integer"),
        ("defaults", {"seed": "7"}, "defaults.seed", "integer"),
        ("output", {"quality": "80"}, "output.quality", "integer"),
        ("output", {"quality": True}, "output.quality", "integer"),
        ("output", {"thumbnail_px": 64.0}, "output.thumbnail_px", "integer"),
    ],
)
def test_numbers_are_strict(section: str, value: dict[str, Any], field: str, kind: str) -> None:
    message = _error(_spec(**{section: value}))
    assert message == f"spec.json: {field}: Input should be a valid {kind}"


@pytest.mark.parametrize("seed", [True, "1", 1.0])
def test_an_item_seed_is_strict(seed: Any) -> None:
    message = _error(_spec(items=[{"id": "a", "prompt": "x", "seed": seed}]))
    assert "items[0].seed: Input should be a valid integer" in message


def test_float_fields_take_integers_and_keep_lists_as_tuples() -> None:
    # Strict numbers must not make the whole model strict: JSON lists still fill tuple fields.
    data = _spec(limits={"timeout_s": 5, "rate_per_minute": 30})
    data["items"] = [{"id": "a", "prompt": "x", "references": []}]
    spec = parse_spec(data, "spec.json")
    assert spec.limits.timeout_s == 5.0
    assert spec.limits.rate_per_minute == 30.0
    assert spec.items[0].references == ()


@pytest.mark.parametrize("size", ["big", "1024", "0x10", "10x0", "1024*1024", "-5x5", "64x64\n"])
def test_bad_sizes(size: str) -> None:
    assert "size" in _error(_spec(defaults={"size": size}))


def test_auto_size_is_allowed() -> None:
    assert parse_spec(_spec(defaults={"size": "auto"}), "s").defaults.size == "auto"


def test_an_unknown_consistency_names_the_choices() -> None:
    message = _error(_spec(consistency="first_image"))
    assert "consistency: Input should be 'none' or 'first-as-reference'" in message


def test_a_budget_is_a_positive_number() -> None:
    assert parse_spec(_spec(limits={"budget_usd": 5}), "s").limits.budget_usd == 5
    assert "limits.budget_usd" in _error(_spec(limits={"budget_usd": 0}))
    assert "limits.budget_usd" in _error(_spec(limits={"budget_usd": "5"}))


def test_consistency_none_is_fine() -> None:
    assert parse_spec(_spec(consistency="none"), "s").consistency == "none"


def test_spec_is_frozen() -> None:
    spec = parse_spec(_spec(), "s")
    with pytest.raises(ValueError):
        spec.key = "other"


def test_more_problems_are_counted() -> None:
    message = _error(_spec(provder="mock", limits={"concurency": 1}))
    assert "more problem" in message


# -------------------------------------------------------------------- overrides


def _base() -> JobSpec:
    return parse_spec(
        _spec(
            name="spec name",
            provider="mock",
            limits={"concurrency": 2, "rate_per_minute": 10, "timeout_s": 30, "max_attempts": 2},
        ),
        "spec.json",
    )


def test_overrides_win_over_the_spec() -> None:
    spec = apply_overrides(
        _base(),
        provider="openai",
        model="gpt-image-1",
        concurrency=7,
        rate_per_minute=90.0,
        timeout_s=12.5,
        max_attempts=5,
        key="other-key",
        name="flag name",
    )
    assert spec.provider == "openai"
    assert spec.model == "gpt-image-1"
    assert spec.limits.concurrency == 7
    assert spec.limits.rate_per_minute == 90.0
    assert spec.limits.timeout_s == 12.5
    assert spec.limits.max_attempts == 5
    assert spec.key == "other-key"
    assert spec.name == "flag name"
    assert [item.id for item in spec.items] == ["page-1"]


def test_unset_overrides_keep_the_spec() -> None:
    base = _base()
    spec = apply_overrides(
        base,
        provider=None,
        model=None,
        concurrency=None,
        rate_per_minute=None,
        timeout_s=None,
        max_attempts=None,
        key=None,
        name=None,
    )
    assert spec == base


def test_one_override_leaves_other_limits_alone() -> None:
    spec = apply_overrides(_base(), concurrency=3)
    assert spec.limits.concurrency == 3
    assert spec.limits.rate_per_minute == 10
    assert spec.limits.max_attempts == 2


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"concurrency": 0}, "limits.concurrency"),
        ({"rate_per_minute": -3.0}, "limits.rate_per_minute"),
        ({"timeout_s": 0.0}, "limits.timeout_s"),
        ({"max_attempts": 0}, "limits.max_attempts"),
        ({"key": "bad key"}, "key"),
        ({"name": "n" * 201}, "name"),
    ],
)
def test_overrides_are_validated(override: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        apply_overrides(_base(), **override)
    message = str(caught.value)
    assert message.startswith("command line: ")
    assert field in message


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"concurrency": "3"}, "limits.concurrency: concurrency must be a whole number"),
        ({"timeout_s": True}, "limits.timeout_s: Input should be a valid"),
    ],
)
def test_overrides_are_strict_too(override: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^command line: {field}"):
        apply_overrides(_base(), **override)


def test_integer_overrides_fill_float_limits() -> None:
    spec = apply_overrides(_base(), rate_per_minute=45, timeout_s=9)
    assert spec.limits.rate_per_minute == 45.0
    assert spec.limits.timeout_s == 9.0


def test_overrides_keep_resolved_references(tmp_path: Path) -> None:
    (tmp_path / "ref.png").write_bytes(b"x")
    data = _spec(items=[{"id": "a", "prompt": "x", "references": ["ref.png"]}])
    spec = load_spec(_write(tmp_path, "s.json", json.dumps(data)))
    again = apply_overrides(spec, concurrency=1)
    assert again.items[0].references == spec.items[0].references


@pytest.mark.parametrize("box", ["99999x99999", "8193x100", "8000x8000"])
def test_an_output_box_too_big_to_process_is_refused(box: str) -> None:
    data = {"key": "k", "items": [{"id": "a", "prompt": "x"}], "output": {"max_size": box}}
    with pytest.raises(ConfigError, match=r"output\.max_size"):
        parse_spec(data, "s.json")


def test_ids_differing_only_in_case_are_refused() -> None:
    # They would overwrite each other's files on case-insensitive file systems.
    data = {"key": "k", "items": [{"id": "Page-1", "prompt": "x"}, {"id": "page-1", "prompt": "y"}]}
    with pytest.raises(ConfigError, match="only in case"):
        parse_spec(data, "s.json")


def test_a_fifo_given_as_the_spec_is_refused_at_once(tmp_path: Path) -> None:
    import os
    import threading

    fifo = tmp_path / "spec.json"
    os.mkfifo(fifo)
    said: list[str] = []

    def load() -> None:
        with pytest.raises(ConfigError) as caught:
            load_spec(fifo)
        said.append(str(caught.value))

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(timeout=20)  # before the fix it waited for a writer forever
    assert not reader.is_alive(), "reading a FIFO must not wait for a writer"
    assert said == [
        f"{fifo}: not a regular file (a pipe, a device or a folder); give the path of a spec "
        "file, or - to read standard input"
    ]


@pytest.mark.parametrize("ref", ["a\x00b.png", "", " ", "x" * 4097])
def test_a_reference_that_cannot_be_a_path_is_refused(ref: str) -> None:
    message = _error(_spec(items=[{"id": "a", "prompt": "x", "references": [ref]}]))
    assert message.startswith("spec.json: items[0].references: each reference must be")

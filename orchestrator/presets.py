"""Prompt presets: named wording put around an item's prompt (`"preset": "watercolor"`).

The built-in presets are data, in `presets.json` inside the package (read through
`importlib.resources`). A user adds presets, or replaces built-in ones, with a JSON file of the
same shape named by `$IMAGEBATCH_PRESETS`: an object mapping each name to its wording, with
`{prompt}` where the item's prompt goes (names starting with `_` are comments).

A job's spec picks a preset with `defaults.preset`, an item with its own `preset` (which wins;
`"none"` means no preset for that item). `final_prompts` works out the prompt each item is sent,
once, when the job is created; the journal keeps it on the item (`ItemRecord.final_prompt`), so
a resume sends the same words even if the preset files changed meanwhile. An unknown preset is a
`ConfigError` listing the known ones, raised before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .errors import ConfigError
from .spec import JobSpec

__all__ = ["ENV_VAR", "NO_PRESET", "apply_preset", "final_prompts", "load_presets"]

ENV_VAR = "IMAGEBATCH_PRESETS"
NO_PRESET = "none"
"""The preset name an item uses to opt out of the job's default preset."""
PLACEHOLDER = "{prompt}"


def apply_preset(prompt: str, wording: str) -> str:
    """`wording` with the prompt put where `{prompt}` stands."""
    return wording.replace(PLACEHOLDER, prompt)


def load_presets(env: Mapping[str, str]) -> dict[str, str]:
    """The built-in presets with those of the file named by `$IMAGEBATCH_PRESETS` over them.

    Reads a file: call it from a thread when a loop is running.
    """
    presets = dict(_built_in())
    path = env.get(ENV_VAR)
    if path:
        presets.update(_user_presets(Path(path)))
    return presets


def final_prompts(spec: JobSpec, env: Mapping[str, str]) -> dict[str, str]:
    """Per item id, the prompt it is sent (its own prompt when no preset applies).

    Raises `ConfigError` for an unknown preset, naming the field and the known presets.
    """
    wanted = [spec.defaults.preset, *(item.preset for item in spec.items)]
    if all(name is None or name == NO_PRESET for name in wanted):
        return {item.id: item.prompt for item in spec.items}
    presets = load_presets(env)
    _check_known(spec.defaults.preset, "defaults.preset", presets)
    prompts = {}
    for index, item in enumerate(spec.items):
        _check_known(item.preset, f"items[{index}].preset", presets)
        name = item.preset if item.preset is not None else spec.defaults.preset
        if name is None or name == NO_PRESET:
            prompts[item.id] = item.prompt
        else:
            prompts[item.id] = apply_preset(item.prompt, presets[name])
    return prompts


def _check_known(name: str | None, where: str, presets: Mapping[str, str]) -> None:
    if name is None or name == NO_PRESET or name in presets:
        return
    known = ", ".join(sorted(presets))
    raise ConfigError(
        f"{where}: no preset {name!r}; known: {known}, or {NO_PRESET!r} "
        f"(add your own in a JSON file named by ${ENV_VAR})"
    )


@lru_cache(maxsize=1)
def _built_in() -> dict[str, str]:
    text = resources.files("orchestrator").joinpath("presets.json").read_text(encoding="utf-8")
    return _validated(json.loads(text), "presets.json")


def _user_presets(path: Path) -> dict[str, str]:
    where = f"${ENV_VAR} ({path})"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{where}: cannot read it ({error.strerror}); fix the path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{where}: invalid JSON ({error}); fix the file") from None
    return _validated(raw, where)


def _validated(raw: object, where: str) -> dict[str, str]:
    """The presets of a file's JSON, after checking its shape (comments dropped)."""
    if not isinstance(raw, dict):
        raise ConfigError(f'{where}: must be a JSON object like {{"name": "... {{prompt}} ..."}}')
    presets = {}
    for name, wording in raw.items():
        if name.startswith("_"):
            continue
        if name == NO_PRESET or not isinstance(wording, str) or PLACEHOLDER not in wording:
            raise ConfigError(
                f"{where}: preset {name!r} must be a text with {PLACEHOLDER} where the prompt "
                f"goes (and not be named {NO_PRESET!r})"
            )
        presets[name] = wording
    return presets

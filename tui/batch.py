"""The new-batch form's values made into a job spec, by the same rules as the CLI's.

Everything is checked by `parse_spec` (and, on submit, by the orchestrator's pre-flight), so the
form accepts exactly what a spec file would. A refusal names the form field to show it on.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from orchestrator import ConfigError, JobSpec, parse_spec

__all__ = ["FIELDS", "BatchForm", "FieldError", "build_spec", "field_of"]

FIELDS = (
    *("name", "prompts", "spec_file", "provider", "model"),
    *("count", "concurrency", "size", "options"),
)
MAX_COUNT = 100
SOURCE = "form"


class FieldError(ConfigError):
    """The form's value in `field` is refused; the message says why and what to do."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class BatchForm:
    """What the form holds, as typed."""

    name: str = ""
    prompts: str = ""
    """One prompt per line; blank lines and lines starting with `#` are skipped."""
    spec_file: str | None = None
    """A spec file to take the images (and settings) from instead of the prompts."""
    provider: str | None = None
    """None keeps the spec file's provider (or the mock's, without a file)."""
    model: str = ""
    count: str = "1"
    """Images per prompt."""
    concurrency: str = ""
    size: str = ""
    options: str = ""
    """The provider's options as a JSON object."""


def build_spec(form: BatchForm, file_spec: JobSpec | None = None) -> JobSpec:
    """The spec the form describes, over `file_spec` when a spec file was picked."""
    count = _count(form.count)
    if file_spec is not None:
        data = _over_file(form, file_spec)
    else:
        prompts = [line.strip() for line in form.prompts.splitlines()]
        data = {
            "key": f"{_slug(form.name)}-{secrets.token_hex(3)}",
            "name": form.name.strip(),
            "provider": form.provider or "mock",
            "items": [
                {"id": f"item-{n:03d}", "prompt": p}
                for n, p in enumerate((p for p in prompts if p and not p.startswith("#")), 1)
            ],
        }
    _set_common(data, form)
    data["items"] = _repeated(data["items"], count)
    try:
        return parse_spec(data, SOURCE)
    except ConfigError as error:
        raise as_field_error(error, file_spec is not None) from None


def as_field_error(error: ConfigError, with_file: bool) -> FieldError:
    """A refusal of the spec (by `parse_spec` or the pre-flight) placed on its form field."""
    if isinstance(error, FieldError):
        return error
    text = str(error).removeprefix(f"{SOURCE}: ")
    field = "provider" if error.option == "provider" else field_of(text, with_file)
    return FieldError(field, text)


def field_of(message: str, with_file: bool) -> str:
    """Which field a refusal is about, from where its message says the problem is."""
    rules = (
        ("limits.concurrency", "concurrency"),
        ("provider_options", "options"),
        ("defaults.size", "size"),
        ("model", "model"),
        ("provider", "provider"),
        ("key", "name"),
        ("name", "name"),
    )
    for prefix, field in rules:
        if message.startswith(prefix):
            return field
    if message.startswith("items") and re.search(r"\bsize\b", message):
        return "size"
    if message.startswith(("items", "prompt")):
        return "spec_file" if with_file else "prompts"
    return "spec_file" if with_file else "prompts"


def _over_file(form: BatchForm, spec: JobSpec) -> dict[str, Any]:
    data = spec.model_dump(exclude_defaults=False)
    if form.provider and form.provider != spec.provider:
        # the spec's options and model were written for its own provider
        data.update(provider=form.provider, provider_options={}, model=None)
    if form.name.strip():
        data["name"] = form.name.strip()
    data["items"] = [item.model_dump(exclude_defaults=True) for item in spec.items]
    return data


def _set_common(data: dict[str, Any], form: BatchForm) -> None:
    if form.model.strip():
        data["model"] = form.model.strip()
    if form.concurrency.strip():
        limits = data.setdefault("limits", {})
        limits["concurrency"] = _number(form.concurrency)
        if limits["concurrency"] != "auto":
            limits.pop("max_concurrency", None)  # a fixed number has no maximum
    if form.size.strip():
        data.setdefault("defaults", {})["size"] = form.size.strip()
    if form.options.strip():
        data["provider_options"] = _options(form.options)


def _count(text: str) -> int:
    value = _number(text or "1")
    if not isinstance(value, int) or not 1 <= value <= MAX_COUNT:
        raise FieldError("count", f"images per prompt must be a whole number from 1 to {MAX_COUNT}")
    return value


def _number(text: str) -> int | str:
    """An integer if the text is one; else the text, for the spec's rules to refuse in words."""
    text = text.strip()
    return int(text) if re.fullmatch(r"-?\d{1,9}", text) else text


def _options(text: str) -> Any:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise FieldError(
            "options", f'not valid JSON ({error.msg}); write an object like {{"seed": 1}}'
        ) from None
    if not isinstance(value, dict):
        raise FieldError("options", 'write the options as a JSON object, like {"seed": 1}')
    return value


def _repeated(items: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    if count == 1:
        return items
    return [{**item, "id": f"{item['id']}-{n}"} for item in items for n in range(1, count + 1)]


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name.strip().lower()).strip("-.")
    return slug[:40] or "batch"

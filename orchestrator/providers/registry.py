"""Providers by name: the built-ins and third-party ones, all through lazy import paths.

Built-in providers are listed in pyproject's `imagebatch.providers` entry-point group, and so is
any plugin: `[project.entry-points."imagebatch.providers"] myapi = "mypkg.provider:MyProvider"`.
The table below repeats the built-ins so they resolve even when the package is not installed
(running from a source tree).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from ..errors import ConfigError
from .base import Provider, ProviderConfig, ProviderFactory

__all__ = ["available", "create", "load_factory"]

ENTRY_POINT_GROUP = "imagebatch.providers"

BUILTIN: dict[str, str] = {
    "mock": "orchestrator.providers.mock:MockProvider",
    "openai": "orchestrator.providers.openai:OpenAIProvider",
    "gemini": "orchestrator.providers.gemini:GeminiProvider",
}


def _import_paths() -> dict[str, str]:
    paths = dict(BUILTIN)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        paths.setdefault(point.name, point.value)
    return paths


def available() -> list[str]:
    """Names of every provider that can be asked for."""
    return sorted(_import_paths())


def load_factory(name: str) -> ProviderFactory:
    """Import the factory registered under `name`. A built-in name wins over any entry point
    (see `_import_paths`), so it needs no scan of the installed packages' metadata."""
    paths = BUILTIN if name in BUILTIN else _import_paths()
    if name not in paths:
        raise ConfigError(
            f"provider: unknown provider {name!r}; choose one of {', '.join(sorted(paths))}"
        )
    module_name, _, attr = paths[name].partition(":")
    try:
        module = importlib.import_module(module_name)
        factory: ProviderFactory = getattr(module, attr)
    except (ImportError, AttributeError) as error:
        raise ConfigError(
            f"provider: {name!r} is registered as {paths[name]!r} but cannot be loaded ({error})"
        ) from None
    return factory


def create(name: str, config: ProviderConfig) -> Provider:
    """Build the provider `name` from `config` (raises `ConfigError` on bad options or keys)."""
    return load_factory(name)(config)

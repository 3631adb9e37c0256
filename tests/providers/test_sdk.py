"""`BackgroundImport`: a provider's SDK imported in a thread, and what `prepare` builds there."""

from __future__ import annotations

import threading
from types import ModuleType

import pytest

from orchestrator.errors import ConfigError
from orchestrator.providers.sdk import BackgroundImport


async def test_what_prepare_builds_in_the_import_thread_is_handed_out_once() -> None:
    built_in: list[str] = []

    def prepare(module: ModuleType) -> object:
        built_in.append(threading.current_thread().name)
        return ("client for", module.__name__)

    sdk = BackgroundImport("colorsys", package="colorsys", provider="test", prepare=prepare)
    module = await sdk.ready()
    assert module.__name__ == "colorsys"
    assert built_in == ["import colorsys"]  # not on the event loop's thread
    assert sdk.take_prepared() == ("client for", "colorsys")
    assert sdk.take_prepared() is None  # a second provider builds its own


async def test_a_prepare_that_fails_costs_only_the_head_start() -> None:
    def prepare(module: ModuleType) -> object:
        raise RuntimeError("no TLS here")

    sdk = BackgroundImport("json", package="json", provider="test", prepare=prepare)
    assert (await sdk.ready()).__name__ == "json"
    assert sdk.take_prepared() is None


async def test_a_missing_package_is_a_config_error_naming_it() -> None:
    sdk = BackgroundImport("no_such_sdk_here", package="no-such-sdk", provider="test")
    with pytest.raises(ConfigError, match="pip install no-such-sdk"):
        await sdk.ready()

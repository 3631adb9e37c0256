"""A canary key provokes every error class; the key must appear in no message, repr or result,
even when the server quotes the whole key back (a hostile server, `echo_key`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orchestrator.errors import ImageBatchError, ProviderError
from orchestrator.providers.base import Reference
from orchestrator.testing.fakeserver import FakeServer

from .conftest import CANARY, BuildProvider, StartServer, request

FAULTS: list[dict[str, Any]] = [
    {"require_key": "sk-the-right-key-0123456789"},
    {"rate_429": 1.0},
    {"rate_500": 1.0},
    {"reject_pattern": "."},
    {"rate_malformed_json": 1.0},
    {"rate_truncated_b64": 1.0},
    {"rate_not_image": 1.0},
]


def assert_clean(error: BaseException) -> None:
    seen: BaseException | None = error
    while seen is not None:
        for text in (str(seen), repr(seen), repr(vars(seen))):
            assert CANARY not in text
            assert CANARY[-12:] not in text
        seen = seen.__cause__ or seen.__context__
    assert error.__cause__ is None, "SDK exceptions must not travel along"


async def provoke(provider_name: str, server: FakeServer, build: BuildProvider) -> ProviderError:
    provider = build(provider_name, server)
    with pytest.raises(ProviderError) as caught:
        await provider.generate(request("a canary in a mine"))
    assert CANARY not in repr(provider)
    return caught.value


@pytest.mark.parametrize("provider_name", ["openai", "gemini"])
@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: next(iter(fault)))
async def test_no_error_class_leaks_the_key(
    provider_name: str, fault: dict[str, Any], start_server: StartServer, build: BuildProvider
) -> None:
    server = await start_server(echo_key=True, **fault)
    assert_clean(await provoke(provider_name, server, build))


@pytest.mark.parametrize("provider_name", ["openai", "gemini"])
async def test_invalid_request_and_unreachable_server_do_not_leak_the_key(
    provider_name: str, start_server: StartServer, build: BuildProvider
) -> None:
    server = await start_server(echo_key=True)
    broken = Reference(data=b"no picture" * 10, mime_type="image/png", name="ref-0.png")
    provider = build(provider_name, server)
    with pytest.raises(ProviderError) as caught:
        await provider.generate(request("a canary", references=(broken,)))
    assert_clean(caught.value)
    await server.close()
    with pytest.raises(ProviderError) as caught:
        await provider.generate(request("a canary"))
    assert_clean(caught.value)


@pytest.mark.parametrize("provider_name", ["openai", "gemini"])
async def test_results_and_timeouts_do_not_leak_the_key(
    provider_name: str, start_server: StartServer, build: BuildProvider
) -> None:
    server = await start_server()
    provider = build(provider_name, server)
    image = await provider.generate(request("a canary"))
    assert CANARY not in repr(image) and CANARY not in str(image.model_dump(exclude={"data"}))
    server.configure(rate_hang=1.0)
    with pytest.raises(TimeoutError) as caught:
        async with asyncio.timeout(0.2):
            await provider.generate(request("a canary"))
    assert CANARY not in repr(caught.value)


def test_missing_key_error_names_the_variable_and_the_way_out(build: BuildProvider) -> None:
    for name, variable in (("openai", "OPENAI_API_KEY"), ("gemini", "GEMINI_API_KEY")):
        with pytest.raises(ImageBatchError) as caught:
            build(name)
        assert variable in str(caught.value)
        # the way out in the user's terms; the CLI adds its flag (`--provider mock`)
        assert "mock provider" in str(caught.value) and caught.value.option == "provider"
        assert caught.value.exit_code == 2

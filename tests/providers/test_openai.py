"""OpenAI provider: options, model checks, the URL path of DALL-E, usage and cost, translation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2
import openai
import pytest

from orchestrator.costs import TokenUsage, usage_cost
from orchestrator.errors import (
    AttemptTimeoutError,
    AuthError,
    ConfigError,
    InvalidRequestError,
    RateLimitedError,
    UnavailableError,
)
from orchestrator.providers.base import ProviderConfig
from orchestrator.providers.openai import DEFAULT_MODEL, OpenAIProvider
from orchestrator.providers.openai_errors import translate
from orchestrator.testing.fakeserver import FakeServer

from .conftest import CANARY, BuildProvider, reference, request


def make(model: str | None = None, **options: Any) -> OpenAIProvider:
    return OpenAIProvider(
        ProviderConfig(model=model, options=dict(options), env={"OPENAI_API_KEY": CANARY})
    )


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"background": "glass"}, "provider_options.background"),
        ({"colour": "red"}, "provider_options.colour"),
        ({"output_compression": 50}, "provider_options"),
        (
            {"output_format": "jpeg", "output_compression": 101},
            "provider_options.output_compression",
        ),
    ],
)
def test_bad_options_are_one_line_config_errors(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make(**options)
    assert str(caught.value).startswith(field)
    assert "\n" not in str(caught.value)


def test_gpt_only_options_are_refused_for_dall_e() -> None:
    with pytest.raises(ConfigError, match=r"provider_options\.output_format"):
        make("dall-e-3", output_format="webp")
    with pytest.raises(ConfigError, match=r"provider_options\.response_format"):
        make("gpt-image-1.5", response_format="url")


@pytest.mark.parametrize(
    ("model", "fields", "problem"),
    [
        ("gpt-image-1.5", {"size": "1792x1024"}, "size '1792x1024' is not one of"),
        ("gpt-image-1.5", {"quality": "hd"}, "quality 'hd'"),
        ("gpt-image-1.5", {"style": "vivid"}, "style is not supported"),
        ("gpt-image-1.5", {"seed": 3}, "seed is not supported"),
        ("gpt-image-1.5", {"negative_prompt": "cats"}, "negative_prompt"),
        ("gpt-image-2", {"size": "1000x1000"}, "multiples of 16"),
        ("gpt-image-2", {"size": "3840x512"}, "aspect ratio"),
        ("gpt-image-2", {"size": "3840x3840"}, "largest size"),
        ("gpt-image-2-2026-04-21", {"quality": "max"}, "quality 'max'"),
        ("dall-e-3", {"size": "1024x1536"}, "size '1024x1536'"),
    ],
)
def test_check_refuses_what_the_model_refuses(
    model: str, fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError, match="item item-1: .*" + problem.replace("(", r"\(")):
        make(model).check(request(**fields))


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        ("gpt-image-1.5", {"size": "1536x1024", "quality": "high"}),
        ("gpt-image-2", {"size": "1536x864"}),
        ("gpt-image-2.5-flare", {"size": "2560x1440", "quality": "max"}),
        ("dall-e-3", {"size": "1792x1024", "quality": "hd", "style": "natural"}),
        ("some-future-model", {"size": "777x333"}),
    ],
)
def test_check_accepts_what_the_model_accepts(model: str, fields: dict[str, Any]) -> None:
    make(model).check(request(**fields))


def test_construction_needs_no_loop_and_model_defaults() -> None:
    provider = make()
    assert provider.model == DEFAULT_MODEL == provider.capabilities.default_model
    assert provider.capabilities.sizes == ("1024x1024", "1536x1024", "1024x1536", "auto")
    assert "gpt-image-1.5/1024x1024/low" in provider.capabilities.prices


async def test_usage_and_token_cost_are_recorded(fake: FakeServer, build: BuildProvider) -> None:
    provider = build("openai", fake)
    image = await provider.generate(
        request("a cat", size="1536x1024", quality="low", references=(reference(),))
    )
    assert image.usage is not None
    assert image.usage["output_image_tokens"] > 0 and image.usage["input_image_tokens"] > 0
    expected = usage_cost(
        "openai",
        DEFAULT_MODEL,
        TokenUsage(**{k: v for k, v in image.usage.items() if k != "total_tokens"}),
    )
    assert image.cost_usd == expected and expected is not None and expected > 0
    assert fake.stats.by_endpoint == {"openai.edits": 1}


async def test_dall_e_url_is_downloaded(fake: FakeServer, build: BuildProvider) -> None:
    provider = build("openai", fake, model="dall-e-3")
    image = await provider.generate(request("a bird", size="1792x1024", quality="hd"))
    assert image.data.startswith(b"\x89PNG") and image.mime_type == "image/png"
    assert image.revised_prompt == "A picture of: a bird"
    assert image.usage is None and image.cost_usd == 0.12


async def test_dall_e_b64_json_option(fake: FakeServer, build: BuildProvider) -> None:
    provider = build("openai", fake, model="dall-e-2", options={"response_format": "b64_json"})
    image = await provider.generate(request("a bird", size="256x256"))
    assert image.data.startswith(b"\x89PNG") and image.cost_usd == 0.016


async def test_output_format_and_model_reach_the_api(
    fake: FakeServer, build: BuildProvider
) -> None:
    provider = build("openai", fake, options={"output_format": "webp", "output_compression": 60})
    image = await provider.generate(request())
    assert image.mime_type == "image/webp"
    assert fake.stats.log[0]["model"] == DEFAULT_MODEL


async def test_unknown_model_is_an_invalid_request(fake: FakeServer, build: BuildProvider) -> None:
    provider = build("openai", fake, model="paint-o-matic")
    with pytest.raises(InvalidRequestError, match="invalid_value"):
        await provider.generate(request())


async def test_base_url_comes_from_the_given_env_not_os_environ(
    fake: FakeServer, build: BuildProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-os-environ-000000")
    fake.configure(require_key=CANARY)
    assert (await build("openai", fake).generate(request())).data


async def test_refused_connection_is_unavailable(build: BuildProvider, fake: FakeServer) -> None:
    provider = build("openai", fake)
    await fake.close()
    with pytest.raises(UnavailableError, match="connection failed"):
        await provider.generate(request())


def _status_error(status: int, body: Mapping[str, object], **headers: str) -> openai.APIStatusError:
    url = "https://api.openai.com/v1/images/generations"
    response = httpx2.Response(status, headers=headers, request=httpx2.Request("POST", url))
    client = openai.OpenAI(api_key=CANARY, base_url=url)
    try:
        return client._make_status_error(f"Error code: {status}", body=body, response=response)
    finally:
        client.close()


def test_translate_reads_rate_limit_reset_headers() -> None:
    body = {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}
    error = translate(
        _status_error(
            429,
            body,
            **{"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"},
        ),
        CANARY,
    )
    assert isinstance(error, RateLimitedError) and error.retry_after == 360.0


def test_translate_insufficient_quota_is_permanent() -> None:
    body = {"error": {"message": "You exceeded your current quota", "code": "insufficient_quota"}}
    error = translate(_status_error(429, body), CANARY)
    assert isinstance(error, AuthError) and "billing" in error.message


@pytest.mark.parametrize(
    ("status", "kind"),
    [(408, "unavailable"), (503, "unavailable"), (403, "auth"), (404, "invalid_request")],
)
def test_translate_status_classes(status: int, kind: str) -> None:
    body = {"error": {"message": "nope", "type": "x", "code": None}}
    assert translate(_status_error(status, body), CANARY).kind == kind


def test_translate_sdk_timeout() -> None:
    request_ = httpx2.Request("POST", "https://api.openai.com/v1/images/generations")
    assert isinstance(translate(openai.APITimeoutError(request_), CANARY), AttemptTimeoutError)

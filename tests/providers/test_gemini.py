"""Gemini provider: keys, options, Imagen's predict path, aspect ratios, refusals, translation."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import (
    AuthError,
    BadResponseError,
    ConfigError,
    ContentRejectedError,
    InvalidRequestError,
    RateLimitedError,
    UnavailableError,
)
from orchestrator.providers.base import ProviderConfig
from orchestrator.providers.gemini import DEFAULT_MODEL, GeminiProvider, _HttpStatus, _translate
from orchestrator.providers.gemini_payloads import gemini_image, gemini_usage, google_error
from orchestrator.testing.fakeserver import FakeServer

from .conftest import CANARY, BuildProvider, png, reference, request


def make(
    model: str | None = None, env: dict[str, str] | None = None, **options: Any
) -> GeminiProvider:
    env = {"GEMINI_API_KEY": CANARY} if env is None else env
    return GeminiProvider(ProviderConfig(model=model, options=options, env=env))


def test_google_api_key_is_the_fallback() -> None:
    assert make(env={"GOOGLE_API_KEY": CANARY}).model == DEFAULT_MODEL


@pytest.mark.parametrize(
    ("options", "start"),
    [
        ({"aspect_ratio": "7:5"}, "provider_options.aspect_ratio"),
        ({"base_url": "ftp://x"}, "provider_options.base_url"),
        ({"image_size": "8K"}, "provider_options.image_size"),
        ({"person_generation": "allow_all"}, "provider_options.person_generation"),
        ({"sampleCount": 2}, "provider_options.sampleCount: unknown option for gemini"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any], start: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make(**options)
    assert str(caught.value).startswith(start)


@pytest.mark.parametrize(
    ("model", "fields", "problem"),
    [
        (None, {"quality": "high"}, "quality is not supported"),
        (None, {"negative_prompt": "x"}, "negative_prompt is not supported"),
        (None, {"size": "1000x300"}, "matches no aspect ratio"),
        ("imagen-4.0-generate-001", {"size": "1536x672"}, "matches no aspect ratio"),
        ("imagen-4.0-generate-001", {"seed": 1}, "Imagen takes no reference images or seed"),
    ],
)
def test_check_refuses_what_the_model_refuses(
    model: str | None, fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        make(model).check(request(**fields))


def test_check_accepts_sizes_near_a_supported_ratio() -> None:
    for size in ("1024x1024", "1792x1024", "1024x1536", "1536x672", "auto"):
        make().check(request(size=size, seed=4))
    assert not make("imagen-4.0-fast-generate-001").capabilities.supports_references


async def test_size_becomes_an_aspect_ratio(fake: FakeServer, build: BuildProvider) -> None:
    image = await build("gemini", fake).generate(request(size="1920x1080"))
    assert png_size(image.data) == (1344, 768)
    assert image.usage is not None and image.usage["output_image_tokens"] == 1290
    assert image.cost_usd is not None and image.cost_usd > 0


async def test_imagen_predict(fake: FakeServer, build: BuildProvider) -> None:
    provider = build("gemini", fake, model="imagen-4.0-generate-001")
    image = await provider.generate(request(size="1408x768"))
    assert png_size(image.data) == (1408, 768)
    assert image.cost_usd == 0.04 and image.usage is None
    assert fake.stats.by_endpoint == {"imagen.predict": 1}


async def test_imagen_filter_reason_is_reported(fake: FakeServer, build: BuildProvider) -> None:
    fake.configure(reject_pattern="storm")
    provider = build("gemini", fake, model="imagen-4.0-generate-001")
    with pytest.raises(ContentRejectedError, match="safety filter threshold"):
        await provider.generate(request("a storm"))


async def test_base_url_option_wins_over_env(fake: FakeServer) -> None:
    env = {"GEMINI_API_KEY": CANARY, "GEMINI_BASE_URL": "http://127.0.0.1:9"}
    provider = make(env=env, base_url=fake.url)
    try:
        assert (await provider.generate(request(references=(reference(),)))).data
    finally:
        await provider.aclose()
    assert fake.stats.references == {"a lighthouse at dusk": [1]}


async def test_non_image_model_is_an_invalid_request(
    fake: FakeServer, build: BuildProvider
) -> None:
    provider = build("gemini", fake, model="gemini-2.5-flash")
    with pytest.raises(InvalidRequestError, match="INVALID_ARGUMENT"):
        await provider.generate(request())


def test_candidate_without_image_is_rejected_with_the_reason() -> None:
    payload = {
        "candidates": [
            {
                "content": {"parts": [{"text": "I can't draw that."}]},
                "finishReason": "IMAGE_SAFETY",
            }
        ]
    }
    with pytest.raises(ContentRejectedError, match=r"IMAGE_SAFETY.*I can't draw that"):
        gemini_image(payload)
    with pytest.raises(ContentRejectedError, match="OTHER: no"):
        gemini_image({"promptFeedback": {"blockReason": "OTHER", "blockReasonMessage": "no"}})


def test_inline_data_in_snake_case_and_broken_images() -> None:
    import base64

    data = base64.b64encode(png()).decode()
    part = {"inline_data": {"mime_type": "image/png", "data": data}}
    image, mime, usage = gemini_image({"candidates": [{"content": {"parts": [part]}}]})
    assert mime == "image/png" and image == png() and usage is None
    part = {"inlineData": {"mimeType": "image/png", "data": data[:-40]}}
    with pytest.raises(BadResponseError):
        gemini_image({"candidates": [{"content": {"parts": [part]}}]})


def test_usage_by_modality_and_thoughts() -> None:
    usage = gemini_usage(
        {
            "usageMetadata": {
                "promptTokenCount": 300,
                "candidatesTokenCount": 1300,
                "thoughtsTokenCount": 50,
                "promptTokensDetails": [
                    {"modality": "TEXT", "tokenCount": 42},
                    {"modality": "IMAGE", "tokenCount": 258},
                ],
                "candidatesTokensDetails": [
                    {"modality": "IMAGE", "tokenCount": 1290},
                    {"modality": "TEXT", "tokenCount": 10},
                ],
            }
        }
    )
    assert usage is not None
    assert (usage.input_text_tokens, usage.input_image_tokens) == (42, 258)
    assert (usage.output_image_tokens, usage.output_text_tokens) == (1290, 60)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            429,
            b'{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", '
            b'"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", '
            b'"retryDelay": "17s"}]}}',
            (RateLimitedError, 17.0),
        ),
        (
            429,
            b'{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", '
            b'"details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": '
            b'[{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]}, '
            b'{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36s"}]}}',
            (RateLimitedError, 36.0),
        ),
        (
            429,
            b'{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", '
            b'"details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": '
            b'[{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}, '
            b'{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36s"}]}}',
            (AuthError, None),
        ),
        (
            429,
            b'{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED", '
            b'"details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": '
            b'"RATE_LIMIT_EXCEEDED", "metadata": {"quota_limit": "ImagesPerDay"}}]}}',
            (AuthError, None),
        ),
        (
            400,
            b'{"error": {"code": 400, "message": "API key not valid", "status": '
            b'"INVALID_ARGUMENT", "details": [{"@type": '
            b'"type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}',
            (AuthError, None),
        ),
        (
            503,
            b'{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}',
            (UnavailableError, None),
        ),
        (502, b"<html>Bad Gateway</html>", (UnavailableError, None)),
        (
            404,
            b'{"error": {"code": 404, "message": "no model", "status": "NOT_FOUND"}}',
            (InvalidRequestError, None),
        ),
    ],
)
def test_translate_google_errors(
    status: int, body: bytes, expected: tuple[type, float | None]
) -> None:
    error = _translate(_HttpStatus(status, {}, body), CANARY)
    assert isinstance(error, expected[0])
    assert error.retry_after == expected[1]


def test_google_error_prefers_the_retry_after_header() -> None:
    body = b'{"error": {"code": 429, "message": "q", "status": "RESOURCE_EXHAUSTED"}}'
    assert google_error(429, {"retry-after": "4"}, body)[3] == 4.0


def png_size(data: bytes) -> tuple[int, int]:
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")

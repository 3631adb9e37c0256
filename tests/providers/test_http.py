"""The shared helpers: wait headers, durations, image byte checks, safe messages, status mapping."""

from __future__ import annotations

import base64

import pytest

from orchestrator.errors import BadResponseError
from orchestrator.providers.http import (
    check_image_bytes,
    decode_image,
    parse_duration,
    parse_retry_after,
    safe_message,
    status_error,
)

from .conftest import CANARY, png

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("20ms", 0.02),
        ("1.5s", 1.5),
        ("6m0s", 360.0),
        ("1h2m3s", 3723.0),
        ("7", 7.0),
        ("x1s", None),
        ("inf", None),  # a header of "inf" must not make anyone wait forever
        ("nan", None),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after": "Tue, 14 Nov 2023 22:13:50 GMT"}, 30.0),
        (
            {
                "x-ratelimit-reset-requests": "1s",
                "x-ratelimit-reset-tokens": "6m0s",
                "x-ratelimit-remaining-tokens": "0",
            },
            360.0,
        ),
        ({"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s"}, 1.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == seconds


def test_check_image_bytes_catches_truncation_and_junk() -> None:
    data = png()
    assert check_image_bytes(data, "t") == "image/png"
    with pytest.raises(BadResponseError, match="truncated"):
        check_image_bytes(data[: len(data) // 2], "t")
    with pytest.raises(BadResponseError, match="not an image"):
        check_image_bytes(b"<html>oops</html>", "t")


def test_decode_image_refuses_corrupt_base64() -> None:
    text = base64.b64encode(png()).decode()
    assert decode_image(text, "t")[1] == "image/png"
    for broken in (text[:-3], "not base64!", "", None):
        with pytest.raises(BadResponseError):
            decode_image(broken, "t")


def test_safe_message_redacts_and_clips() -> None:
    text = f"bad key {CANARY} and its tail {CANARY[-10:]}\n" + "x" * 1000
    message = safe_message(text, [CANARY])
    assert CANARY not in message and CANARY[-8:] not in message
    assert "\n" not in message and len(message) <= 300


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (429, "rate_limited", True),
        (408, "unavailable", True),
        (500, "unavailable", True),
        (504, "unavailable", True),
        (401, "auth", False),
        (403, "auth", False),
        (400, "invalid_request", False),
        (422, "invalid_request", False),
    ],
)
def test_status_error(status: int, kind: str, retryable: bool) -> None:
    error = status_error(status, "m", retry_after=3.0)
    assert (error.kind, error.retryable) == (kind, retryable)

"""Reading Google's answers: the image of a generateContent or predict response, its token usage,
and the status, reason, message and wait of an error body. Pure functions, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..costs import TokenUsage
from ..errors import ContentRejectedError
from .http import decode_image, parse_duration, parse_retry_after

__all__ = ["daily_quota", "gemini_image", "gemini_usage", "google_error", "imagen_image"]

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def _by_modality(details: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in _dicts(details):
        modality = str(entry.get("modality", "")).upper()
        counts[modality] = counts.get(modality, 0) + _count(entry.get("tokenCount"))
    return counts


def gemini_usage(payload: dict[str, Any]) -> TokenUsage | None:
    """`usageMetadata` as token counts (prompt by modality, output image and text/thoughts)."""
    meta = payload.get("usageMetadata")
    if not isinstance(meta, dict):
        return None
    prompt, output = (
        _by_modality(meta.get("promptTokensDetails")),
        _by_modality(meta.get("candidatesTokensDetails")),
    )
    prompt_total, output_total = (
        _count(meta.get("promptTokenCount")),
        _count(meta.get("candidatesTokenCount")),
    )
    return TokenUsage(
        input_text_tokens=prompt.get("TEXT", prompt_total - prompt.get("IMAGE", 0)),
        input_image_tokens=prompt.get("IMAGE", 0),
        output_image_tokens=output.get("IMAGE", output_total - output.get("TEXT", 0)),
        output_text_tokens=output.get("TEXT", 0) + _count(meta.get("thoughtsTokenCount")),
    )


def _blocked(payload: dict[str, Any]) -> str | None:
    feedback = payload.get("promptFeedback")
    if not isinstance(feedback, dict) or not feedback.get("blockReason"):
        return None
    reason = str(feedback["blockReason"])
    detail = feedback.get("blockReasonMessage")
    return f"{reason}: {detail}" if detail else reason


def gemini_image(payload: dict[str, Any]) -> tuple[bytes, str, TokenUsage | None]:
    """The first image of a generateContent answer, or the refusal the API gave.

    A blocked prompt or a candidate without an image (finishReason `IMAGE_SAFETY`, `SAFETY`,
    `PROHIBITED_CONTENT`, `NO_IMAGE`, or a text-only answer) raises `ContentRejectedError` with
    the reason and any text; a broken image raises `BadResponseError`.
    """
    blocked = _blocked(payload)
    if blocked is not None:
        raise ContentRejectedError(f"gemini: the prompt was blocked ({blocked})")
    candidates = _dicts(payload.get("candidates"))
    if not candidates:
        raise ContentRejectedError("gemini: no image and no candidate in the response")
    first = candidates[0]
    content = first.get("content")
    parts = _dicts(content.get("parts")) if isinstance(content, dict) else []
    for part in parts:
        blob = part.get("inlineData") or part.get("inline_data")
        if isinstance(blob, dict) and "data" in blob:
            data, mime = decode_image(blob.get("data"), "gemini")
            return data, mime, gemini_usage(payload)
    texts = " ".join(str(part["text"]) for part in parts if isinstance(part.get("text"), str))
    reason = first.get("finishMessage") or first.get("finishReason") or "no reason given"
    said = f"; the model said: {texts}" if texts else ""
    raise ContentRejectedError(f"gemini: no image in the response ({reason}){said}")


def imagen_image(payload: dict[str, Any]) -> tuple[bytes, str]:
    """The first image of a predict answer, or the filter reason as `ContentRejectedError`."""
    predictions = _dicts(payload.get("predictions"))
    for prediction in predictions:
        if "bytesBase64Encoded" in prediction:
            return decode_image(prediction["bytesBase64Encoded"], "imagen")
    reasons = [str(p["raiFilteredReason"]) for p in predictions if p.get("raiFilteredReason")]
    reason = "; ".join(reasons) or "no image returned; the safety filter removed it"
    raise ContentRejectedError(f"imagen: {reason}")


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    for detail in details:
        if detail.get("@type") == _RETRY_INFO:
            return parse_duration(str(detail.get("retryDelay", "")))
    return None


def google_error(
    status: int, headers: Mapping[str, str], body: bytes
) -> tuple[int, str, str, float | None]:
    """`(status, reason, message, retry_after)` of an error answer.

    `reason` is the ErrorInfo reason if there is one (`API_KEY_INVALID`), else the status name
    (`RESOURCE_EXHAUSTED`), else `HTTP`; the wait comes from the headers or a `RetryInfo`.
    """
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        text = body.decode("utf-8", "replace") or f"HTTP {status}"
        return status, "HTTP", text, parse_retry_after(headers)
    details = _dicts(error.get("details"))
    reasons = [
        str(d["reason"]) for d in details if d.get("@type") == _ERROR_INFO and d.get("reason")
    ]
    reason = reasons[0] if reasons else str(error.get("status") or "HTTP")
    wait = parse_retry_after(headers)
    if wait is None:
        wait = _retry_delay(details)
    return status, reason, str(error.get("message") or f"HTTP {status}"), wait


def daily_quota(body: bytes) -> str | None:
    """The quota a 429 says is used up for the day, or None for any other answer.

    Google answers RESOURCE_EXHAUSTED both when requests come too fast (a per-minute quota:
    wait and retry) and when a daily quota is spent (retrying before it resets only spends
    attempts). The second names a quota per day: a `QuotaFailure` violation's `quotaId`
    (`GenerateRequestsPerDayPerProjectPerModel-FreeTier`) or an `ErrorInfo`'s `quota_limit`.
    """
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return None
    for detail in _dicts(error.get("details")):
        names: list[object] = []
        if detail.get("@type") == _QUOTA_FAILURE:
            names = [v.get("quotaId") for v in _dicts(detail.get("violations"))]
        elif detail.get("@type") == _ERROR_INFO and isinstance(detail.get("metadata"), dict):
            names = [detail["metadata"].get("quota_limit")]
        for name in names:
            if isinstance(name, str) and "perday" in name.lower():
                return name
    return None

"""The Google endpoints: Gemini `models/{m}:generateContent` and Imagen `models/{m}:predict`.

Answers use the real API's shapes: `candidates[].content.parts[].inlineData{mimeType, data}` with
`usageMetadata`, `promptFeedback.blockReason` for blocked prompts, Imagen
`predictions[{bytesBase64Encoded, mimeType}]` or `raiFilteredReason`, and error bodies
`{"error": {"code", "message", "status", "details"}}` (429 carries a `RetryInfo` and `Retry-After`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .flow import corrupt_b64, format_seconds, respond
from .images import ReferenceImageError, make_image
from .state import STATE, Fault, ServerState

__all__ = ["routes"]

GEMINI_SIZES = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}
IMAGEN_SIZES = {
    "1:1": (1024, 1024),
    "3:4": (896, 1280),
    "4:3": (1280, 896),
    "9:16": (768, 1408),
    "16:9": (1408, 768),
}
_IMAGE_TOKENS = 1290
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"


def error(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        body["details"] = details
    return web.json_response({"error": body}, status=code)


class BadArgument(ValueError):
    """The request is not what the API accepts (answered 400 INVALID_ARGUMENT)."""


@dataclass
class GoogleAsk:
    """One generateContent or predict request, parsed and checked."""

    model: str
    imagen: bool
    prompt: str
    width: int
    height: int
    references: list[bytes] = field(default_factory=list)


def _inline_data(part: dict[str, Any]) -> bytes | None:
    blob = part.get("inlineData") or part.get("inline_data")
    if not isinstance(blob, dict):
        return None
    try:
        return base64.b64decode(str(blob.get("data", "")), validate=True)
    except (binascii.Error, ValueError):
        raise BadArgument(
            "Invalid value at 'contents.parts.inline_data.data': bad base64"
        ) from None


def _parse_contents(body: dict[str, Any]) -> tuple[str, list[bytes]]:
    texts: list[str] = []
    references: list[bytes] = []
    for content in body.get("contents") or []:
        for part in content.get("parts") or [] if isinstance(content, dict) else []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, dict) and (data := _inline_data(part)) is not None:
                references.append(data)
    if not texts:
        raise BadArgument("* GenerateContentRequest.contents: contents is not specified")
    return " ".join(texts), references


def _gemini_ask(model: str, body: dict[str, Any]) -> GoogleAsk:
    prompt, references = _parse_contents(body)
    config = body.get("generationConfig") or body.get("generation_config") or {}
    modalities = config.get("responseModalities") or config.get("response_modalities") or []
    if "IMAGE" not in [str(m).upper() for m in modalities] or "image" not in model:
        raise BadArgument("Model does not support the requested response modality: IMAGE")
    image_config = config.get("imageConfig") or config.get("image_config") or {}
    ratio = image_config.get("aspectRatio") or image_config.get("aspect_ratio") or "1:1"
    if ratio not in GEMINI_SIZES:
        raise BadArgument(f"Unsupported aspect ratio: {ratio}")
    width, height = GEMINI_SIZES[ratio]
    return GoogleAsk(model, False, prompt, width, height, references)


def _imagen_ask(model: str, body: dict[str, Any]) -> GoogleAsk:
    instances = body.get("instances")
    first = instances[0] if isinstance(instances, list) and instances else {}
    prompt = first.get("prompt") if isinstance(first, dict) else None
    if not isinstance(prompt, str) or not prompt:
        raise BadArgument("Invalid value at 'instances[0].prompt': the prompt is empty")
    parameters = body.get("parameters") or {}
    if int(parameters.get("sampleCount", 1)) != 1:
        raise BadArgument("This fake server makes one image per request; use sampleCount 1")
    ratio = parameters.get("aspectRatio") or "1:1"
    if ratio not in IMAGEN_SIZES:
        raise BadArgument(f"Unsupported aspect ratio: {ratio}")
    width, height = IMAGEN_SIZES[ratio]
    return GoogleAsk(model, True, prompt, width, height)


class GoogleAnswer:
    """The outcomes of one request in Google's words (see `flow.Api`)."""

    def __init__(self, ask: GoogleAsk) -> None:
        self.ask = ask

    def rate_limited(self, retry_after_s: float) -> web.Response:
        wait = format_seconds(retry_after_s)
        violation = {
            "quotaMetric": "generativelanguage.googleapis.com/generate_requests",
            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
        }
        details: list[dict[str, Any]] = [
            {"@type": _QUOTA_FAILURE, "violations": [violation]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{wait}s"},
        ]
        message = "You exceeded your current quota, please check your plan and billing details."
        response = error(429, "RESOURCE_EXHAUSTED", message, details)
        response.headers["Retry-After"] = wait
        return response

    def server_error(self) -> web.Response:
        message = "An internal error has occurred. Please retry or report the problem."
        return error(500, "INTERNAL", message)

    def timed_out(self) -> web.Response:
        return error(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.")

    def rejected(self) -> web.Response:
        if self.ask.imagen:
            reason = "Your current safety filter threshold filtered out the generated image."
            return web.json_response({"predictions": [{"raiFilteredReason": reason}]})
        body = {
            "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": self._prompt_tokens(), "totalTokenCount": 0},
            "modelVersion": self.ask.model,
            "responseId": secrets.token_hex(8),
        }
        return web.json_response(body)

    def out_of_credit(self) -> web.Response:
        violation = {
            "quotaMetric": "generativelanguage.googleapis.com/generate_requests",
            "quotaId": "GenerateRequestsPerDayPerProjectPerModel",
        }
        details = [{"@type": _QUOTA_FAILURE, "violations": [violation]}]
        message = "You exceeded your current quota, please check your plan and billing details."
        return error(429, "RESOURCE_EXHAUSTED", message, details)

    def _prompt_tokens(self) -> int:
        return max(1, len(self.ask.prompt) // 4)

    async def success(self, corruption: Fault | None) -> web.Response:
        ask = self.ask
        data = await asyncio.to_thread(
            make_image, ask.prompt, ask.width, ask.height, "png", ask.references
        )
        text = corrupt_b64(base64.b64encode(data).decode("ascii"), corruption)
        if ask.imagen:
            prediction = {"mimeType": "image/png", "bytesBase64Encoded": text}
            return web.json_response({"predictions": [prediction]})
        return web.json_response(self._candidates(text))

    def _candidates(self, text: str) -> dict[str, Any]:
        text_tokens, image_tokens = self._prompt_tokens(), 258 * len(self.ask.references)
        prompt_details = [{"modality": "TEXT", "tokenCount": text_tokens}]
        if image_tokens:
            prompt_details.append({"modality": "IMAGE", "tokenCount": image_tokens})
        image = {"inlineData": {"mimeType": "image/png", "data": text}}
        return {
            "candidates": [
                {"content": {"role": "model", "parts": [image]}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": text_tokens + image_tokens,
                "candidatesTokenCount": _IMAGE_TOKENS,
                "totalTokenCount": text_tokens + image_tokens + _IMAGE_TOKENS,
                "promptTokensDetails": prompt_details,
                "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": _IMAGE_TOKENS}],
            },
            "modelVersion": self.ask.model,
            "responseId": secrets.token_hex(8),
        }


def _auth_failure(state: ServerState, request: web.Request) -> web.Response | None:
    given = request.headers.get("x-goog-api-key") or request.query.get("key")
    problem = state.key_problem(given)
    if problem is None:
        return None
    if problem == "missing" or not given:
        return error(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
        )
    message = "API key not valid. Please pass a valid API key."
    if state.options.echo_key:
        message = f"API key not valid: {given}. Please pass a valid API key."
    reason = {"@type": _ERROR_INFO, "reason": "API_KEY_INVALID", "domain": "googleapis.com"}
    return error(400, "INVALID_ARGUMENT", message, [reason])


def _parse(target: str, body: Any) -> GoogleAsk:
    model, _, method = target.partition(":")
    if not isinstance(body, dict):
        raise BadArgument("Invalid JSON payload received.")
    if method == "generateContent":
        return _gemini_ask(model, body)
    if method == "predict":
        return _imagen_ask(model, body)
    raise BadArgument(f"Unknown method: {method or '(none)'}")


async def models(request: web.Request) -> web.Response:
    """`POST /{version}/models/{model}:{method}` for both Gemini and Imagen."""
    state = request.app[STATE]
    try:
        body = await request.json()
    except ValueError:
        body = None
    try:
        ask = _parse(request.match_info["target"], body)
    except BadArgument as bad:
        return error(400, "INVALID_ARGUMENT", str(bad))
    endpoint = "imagen.predict" if ask.imagen else "gemini.generateContent"
    ticket = state.admit(endpoint, ask.prompt, ask.model, ask.references)
    denied = _auth_failure(state, request)
    if denied is not None:
        state.record(ticket, Fault.AUTH)
        return denied
    try:
        return await respond(state, ticket, GoogleAnswer(ask))
    except ReferenceImageError as bad:
        state.record(ticket, Fault.REJECTED)
        return error(400, "INVALID_ARGUMENT", f"Unable to process input image: {bad}")


def routes() -> list[web.RouteDef]:
    return [web.post("/{version}/models/{target}", models)]

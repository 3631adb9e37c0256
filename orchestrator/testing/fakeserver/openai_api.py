"""The OpenAI Images endpoints: `/v1/images/generations` (JSON) and `/v1/images/edits` (multipart).

Answers use the real API's shapes: `ImagesResponse` (`created`, `data[{b64_json|url,
revised_prompt}]`, `usage{...}`), error bodies `{"error": {"message", "type", "param", "code"}}`,
`x-request-id`, and on 429 `retry-after`, `retry-after-ms` and `x-ratelimit-*` headers.
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .flow import corrupt_b64, format_seconds, request_id, respond
from .images import ReferenceImageError, make_image
from .state import STATE, Fault, ServerState

__all__ = ["routes"]

_SIZE = re.compile(r"^(\d{2,4})x(\d{2,4})$")
_FIXED_SIZES = {
    "gpt-image-1": ("1024x1024", "1536x1024", "1024x1536"),
    "gpt-image-1-mini": ("1024x1024", "1536x1024", "1024x1536"),
    "gpt-image-1.5": ("1024x1024", "1536x1024", "1024x1536"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
}
_OUTPUT_TOKENS = {"low": 272, "medium": 1056, "high": 4160}
_KEY_HELP = "You can find your API key at https://platform.openai.com/account/api-keys."


class BadParameter(ValueError):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


def error(
    status: int, message: str, kind: str, code: str | None = None, param: str | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status, headers={"x-request-id": request_id()})


@dataclass
class ImageAsk:
    """One generation or edit request, parsed and checked."""

    prompt: str
    model: str
    width: int
    height: int
    quality: str
    output_format: str
    want_url: bool
    references: list[bytes] = field(default_factory=list)

    @property
    def gpt_image(self) -> bool:
        return not self.model.startswith("dall-e")


def _size(model: str, value: str) -> tuple[int, int]:
    allowed = _FIXED_SIZES.get(model)
    if value == "auto" and not model.startswith("dall-e"):
        return 1024, 1024
    match = _SIZE.match(value)
    if match is None or (allowed is not None and value not in allowed):
        supported = ", ".join(f"'{size}'" for size in allowed or ("1024x1024", "auto"))
        raise BadParameter("size", f"Invalid value: '{value}'. Supported values are: {supported}.")
    return int(match[1]), int(match[2])


def parse_ask(params: dict[str, Any], references: list[bytes]) -> ImageAsk:
    """Check the parameters the way the API does; raise `BadParameter` naming the first bad one."""
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise BadParameter("prompt", "Missing required parameter: 'prompt'.")
    model = str(params.get("model") or "dall-e-2")
    if not model.startswith(("gpt-image", "chatgpt-image", "dall-e-")):
        raise BadParameter("model", f"Invalid value: '{model}'. Use a GPT image model.")
    if str(params.get("n") or 1) != "1":
        raise BadParameter("n", "This fake server makes one image per request; use n=1.")
    width, height = _size(model, str(params.get("size") or "1024x1024"))
    output_format = str(params.get("output_format") or "png")
    if output_format not in ("png", "jpeg", "webp"):
        raise BadParameter("output_format", f"Invalid value: '{output_format}'.")
    want_url = model.startswith("dall-e") and params.get("response_format") != "b64_json"
    quality = str(params.get("quality") or "auto")
    return ImageAsk(prompt, model, width, height, quality, output_format, want_url, references)


class OpenAIAnswer:
    """The outcomes of one request in OpenAI's words (see `flow.Api`)."""

    def __init__(self, state: ServerState, ask: ImageAsk, origin: str) -> None:
        self.state, self.ask, self.origin = state, ask, origin

    def rate_limited(self, retry_after_s: float) -> web.Response:
        wait = format_seconds(retry_after_s)
        response = error(
            429,
            f"Rate limit reached for {self.ask.model} in organization org-fake on images per "
            f"minute (IPM): Limit 5, Used 5, Requested 1. Please try again in {wait}s. Visit "
            "https://platform.openai.com/account/rate-limits to learn more.",
            "requests",
            "rate_limit_exceeded",
        )
        response.headers.update(
            {
                "retry-after": wait,
                "retry-after-ms": str(int(retry_after_s * 1000)),
                "x-ratelimit-limit-requests": "5",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{wait}s",
            }
        )
        return response

    def server_error(self) -> web.Response:
        message = "The server had an error while processing your request. Sorry about that!"
        return error(500, message, "server_error")

    def timed_out(self) -> web.Response:
        return error(504, "The server timed out while generating the image.", "server_error")

    def rejected(self) -> web.Response:
        return error(
            400,
            "Your request was rejected by the safety system. If you believe this is an error, "
            "contact us at help.openai.com and include the request ID.",
            "image_generation_user_error",
            "moderation_blocked",
        )

    def out_of_credit(self) -> web.Response:
        return error(
            429,
            "You exceeded your current quota, please check your plan and billing details. For "
            "more information on this error, read the docs: "
            "https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            "insufficient_quota",
        )

    async def success(self, corruption: Fault | None) -> web.Response:
        ask = self.ask
        fmt = "png" if ask.want_url else ask.output_format
        data = await asyncio.to_thread(
            make_image, ask.prompt, ask.width, ask.height, fmt, ask.references
        )
        image: dict[str, Any] = {}
        if ask.want_url:
            name = secrets.token_hex(12)
            self.state.files[name] = (data, "image/png")
            image["url"] = f"{self.origin}/fake-files/{name}.png"
        else:
            text = base64.b64encode(data).decode("ascii")
            image["b64_json"] = corrupt_b64(text, corruption)
        if ask.model == "dall-e-3":
            image["revised_prompt"] = f"A picture of: {ask.prompt}"
        body: dict[str, Any] = {"created": int(time.time()), "data": [image]}
        if ask.gpt_image:
            body.update(self._gpt_fields())
        headers = {"x-request-id": request_id(), "openai-processing-ms": "1"}
        return web.json_response(body, headers=headers)

    def _gpt_fields(self) -> dict[str, Any]:
        ask = self.ask
        quality = ask.quality if ask.quality in _OUTPUT_TOKENS else "medium"
        output = round(_OUTPUT_TOKENS[quality] * ask.width * ask.height / (1024 * 1024))
        text_tokens = max(1, len(ask.prompt) // 4)
        image_tokens = 194 * len(ask.references)
        return {
            "background": "opaque",
            "output_format": ask.output_format,
            "quality": quality,
            "size": f"{ask.width}x{ask.height}",
            "usage": {
                "input_tokens": text_tokens + image_tokens,
                "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
                "output_tokens": output,
                "total_tokens": text_tokens + image_tokens + output,
            },
        }


def _auth_failure(state: ServerState, request: web.Request) -> web.Response | None:
    header = request.headers.get("Authorization", "")
    given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
    problem = state.key_problem(given)
    if problem is None:
        return None
    if problem == "missing" or given is None:
        message = (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). "
            + _KEY_HELP
        )
        return error(401, message, "invalid_request_error")
    shown = given if state.options.echo_key else given[:3] + "*" * 8 + given[-4:]
    message = f"Incorrect API key provided: {shown}. {_KEY_HELP}"
    return error(401, message, "invalid_request_error", "invalid_api_key")


async def _serve(
    request: web.Request, endpoint: str, params: dict[str, Any], refs: list[bytes]
) -> web.Response:
    state = request.app[STATE]
    try:
        ask = parse_ask(params, refs)
    except BadParameter as bad:
        return error(400, str(bad), "invalid_request_error", "invalid_value", bad.param)
    ticket = state.admit(endpoint, ask.prompt, ask.model, refs)
    denied = _auth_failure(state, request)
    if denied is not None:
        state.record(ticket, Fault.AUTH)
        return denied
    try:
        return await respond(state, ticket, OpenAIAnswer(state, ask, str(request.url.origin())))
    except ReferenceImageError as bad:
        state.record(ticket, Fault.REJECTED)
        return error(
            400,
            f"Invalid image file: {bad}.",
            "invalid_request_error",
            "invalid_image_file",
            "image",
        )


async def generations(request: web.Request) -> web.Response:
    try:
        params = await request.json()
    except ValueError:
        params = None
    if not isinstance(params, dict):
        return error(
            400, "We could not parse the JSON body of your request.", "invalid_request_error"
        )
    return await _serve(request, "openai.generations", params, [])


async def edits(request: web.Request) -> web.Response:
    form = await request.post()
    params: dict[str, Any] = {}
    references: list[bytes] = []
    for name, value in form.items():
        if isinstance(value, web.FileField):
            if name in ("image", "image[]"):
                references.append(value.file.read())
        else:
            params[name] = value if isinstance(value, str) else value.decode("utf-8", "replace")
    if not references:
        return error(
            400,
            "Missing required parameter: 'image'.",
            "invalid_request_error",
            "missing_required_parameter",
            "image",
        )
    return await _serve(request, "openai.edits", params, references)


async def fake_file(request: web.Request) -> web.Response:
    name = request.match_info["name"].removesuffix(".png")
    stored = request.app[STATE].files.get(name)
    if stored is None:
        raise web.HTTPNotFound()
    return web.Response(body=stored[0], content_type=stored[1])


def routes() -> list[web.RouteDef]:
    return [
        web.post("/v1/images/generations", generations),
        web.post("/v1/images/edits", edits),
        web.get("/fake-files/{name}", fake_file),
    ]

"""OpenAI Images through the official SDK (`provider: "openai"`).

`images.generate` for plain items, `images.edit` with the reference images for items that have
them. One `AsyncOpenAI` client, built on the first call and bound to that event loop, with SDK
retries off (the orchestrator owns retries) and the SDK's own timeout set far above any
per-attempt timeout (the orchestrator cuts attempts). The key comes from `OPENAI_API_KEY` in the
environment mapping the provider is given, never from a spec, and appears in no message.
Every SDK exception is translated by `openai_errors.translate`; once the key is refused, later
calls fail at once with the same `AuthError` instead of spending requests.

The SDK (about a second to import) is imported in a thread started when the provider is built,
and awaited by the first request (`sdk.BackgroundImport`); aiohttp only when an image comes as a
URL. So the default model, the options and the checks cost no SDK import. The options
(`OpenAIOptions`, re-exported here) are in `openai_options.py`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..costs import TokenUsage, flat_prices, image_price, usage_cost
from ..errors import BadResponseError, ConfigError, UnavailableError
from .base import Capabilities, GeneratedImage, GenerateRequest, ProviderConfig
from .capped import AnswerTooLarge, capped_client, read_at_most
from .http import (
    MAX_ANSWER_BYTES,
    AuthLatch,
    check_image_bytes,
    decode_image,
    read_key,
)
from .openai_errors import translate
from .openai_models import MODELS, rule_for
from .openai_options import OpenAIOptions, load_options
from .sdk import BackgroundImport

if TYPE_CHECKING:
    import aiohttp
    import openai

__all__ = ["DEFAULT_MODEL", "OpenAIOptions", "OpenAIProvider"]

DEFAULT_MODEL = "gpt-image-1.5"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
KEY_VARIABLE = "OPENAI_API_KEY"
SDK = BackgroundImport(
    "openai",
    package="openai",
    provider="openai",
    prepare=lambda _: capped_client(MAX_ANSWER_BYTES),
)
MAX_URL_IMAGE_BYTES = 64 * 1024 * 1024
DOWNLOAD_PAUSES_S = (0.5, 2.0)
"""Pauses between fetches of an image URL that failed (the image is already paid for)."""


class OpenAIProvider:
    """Images from the OpenAI API (or any server that speaks it, via `OPENAI_BASE_URL`)."""

    name = "openai"
    default_model = DEFAULT_MODEL
    """The model used when the spec names none (read without building the provider)."""

    def __init__(self, config: ProviderConfig) -> None:
        self._key = read_key(config.env, (KEY_VARIABLE,), "openai")
        self.model = config.model or DEFAULT_MODEL
        self._rule = rule_for(self.model)
        self.options = load_options(config.options, self._rule, self.model)
        self._base_url = config.env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self._organization = config.env.get("OPENAI_ORG_ID") or None
        self._project = config.env.get("OPENAI_PROJECT_ID") or None
        self.capabilities = Capabilities(
            default_model=DEFAULT_MODEL,
            models=MODELS,
            sizes=self._rule.sizes if self._rule and self._rule.sizes else (),
            supports_references=self._rule is None or self._rule.max_references > 0,
            prices=flat_prices("openai"),
        )
        self._client: openai.AsyncOpenAI | None = None
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._auth = AuthLatch()
        SDK.start()

    def __repr__(self) -> str:
        return f"OpenAIProvider(model={self.model!r}, base_url={self._base_url!r})"

    def check(self, request: GenerateRequest) -> None:
        """Raise `ConfigError` for a request the model can never accept."""
        problem = _unsupported(request)
        if problem is None and self._rule is not None:
            problem = self._rule.problem(request)
        if problem is not None:
            raise ConfigError(f"item {request.item_id}: {problem} (openai model {self.model})")

    async def generate(self, request: GenerateRequest) -> GeneratedImage:
        """One image for `request`, or a `ProviderError`. Safe to cancel."""
        self._auth.check()
        client = await self._sdk()
        import openai  # loaded by `_sdk()`: a lookup in sys.modules

        try:
            response = await self._call(client, request)
        except (openai.OpenAIError, ValueError, AnswerTooLarge, RecursionError) as error:
            failure = self._auth.note(translate(error, self._key.get_secret_value()))
        else:
            return await self._image_from(response, request)
        raise failure

    async def aclose(self) -> None:
        """Close the SDK client and the download session."""
        client, session = self._client, self._session
        self._client = self._session = None
        if client is not None:
            await client.close()
        if session is not None:
            await session.close()

    async def ready(self) -> None:
        """Once the SDK is imported and the client built: a request can go out."""
        await self._sdk()

    async def _sdk(self) -> openai.AsyncOpenAI:
        """The client, built on the first call, once the SDK's import (begun in `__init__`) is
        done; the wait is off the event loop."""
        await SDK.ready()
        import openai  # imported by now: a lookup in sys.modules

        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            raise RuntimeError("OpenAIProvider is bound to another event loop; build one per loop")
        if self._client is None:
            self._loop = loop
            self._client = openai.AsyncOpenAI(
                api_key=self._key.get_secret_value(),
                organization=self._organization,
                project=self._project,
                base_url=self._base_url,
                max_retries=0,
                timeout=self.options.timeout_s,
                http_client=SDK.take_prepared() or capped_client(MAX_ANSWER_BYTES),
            )
        return self._client

    async def _call(
        self, client: openai.AsyncOpenAI, request: GenerateRequest
    ) -> openai.types.ImagesResponse:
        import openai  # loaded before the client was built

        kwargs = self._parameters(request)
        images = client.images
        if request.references:
            files = [(ref.name, ref.data, ref.mime_type) for ref in request.references]
            result: Any = await images.edit(image=files if len(files) > 1 else files[0], **kwargs)
        else:
            result = await images.generate(**kwargs)
        if not isinstance(result, openai.types.ImagesResponse):
            raise BadResponseError(f"openai: unexpected response ({type(result).__name__})")
        return result

    def _parameters(self, request: GenerateRequest) -> dict[str, Any]:
        options = self.options
        wanted: dict[str, Any] = {
            "model": self.model,
            "prompt": request.prompt,
            "n": 1,
            "size": request.size,
            "quality": request.quality,
            "style": request.style,
            "background": options.background,
            "output_format": options.output_format,
            "output_compression": options.output_compression,
            "response_format": options.response_format,
        }
        if request.references:
            wanted["input_fidelity"] = options.input_fidelity
            wanted.pop("style")
        else:
            wanted["moderation"] = options.moderation
        return {name: value for name, value in wanted.items() if value is not None}

    async def _image_from(
        self, response: openai.types.ImagesResponse, request: GenerateRequest
    ) -> GeneratedImage:
        if not response.data:
            raise BadResponseError("openai: the response holds no image")
        first = response.data[0]
        if first.b64_json:
            data, mime = decode_image(first.b64_json, "openai")
        elif first.url:
            data = await self._download(first.url)
            mime = check_image_bytes(data, "openai image URL")
        else:
            raise BadResponseError("openai: the image has neither b64_json nor url")
        usage = _usage(response)
        cost = usage_cost("openai", self.model, usage) if usage else None
        if cost is None:
            cost = self._listed_price(response, request)
        return GeneratedImage(
            data=data,
            mime_type=mime,
            model=self.model,
            usage=usage.as_dict() if usage else None,
            cost_usd=cost,
            revised_prompt=first.revised_prompt,
        )

    def _listed_price(
        self, response: openai.types.ImagesResponse, request: GenerateRequest
    ) -> float | None:
        default_size, default_quality = (
            (self._rule.default_size, self._rule.default_quality) if self._rule else (None, None)
        )
        size = response.size or request.size or default_size
        quality = response.quality or request.quality or default_quality
        return image_price("openai", self.model, size, quality)

    async def _download(self, url: str) -> bytes:
        """Fetch an image the API answered with a URL. The image is already paid for, so a
        failed fetch is tried again here rather than generating (and paying) again."""
        if not url.startswith(("https://", "http://")):
            raise BadResponseError("openai: the image URL is not http(s)")
        if self._session is None:
            import aiohttp  # only images sent as URLs need it (DALL-E's default)

            self._session = aiohttp.ClientSession()
        for pause in DOWNLOAD_PAUSES_S:
            try:
                return await self._fetch(url)
            except UnavailableError:
                await asyncio.sleep(pause)
        return await self._fetch(url)

    async def _fetch(self, url: str) -> bytes:
        import aiohttp  # imported by `_download`, which made the session

        assert self._session is not None
        try:
            async with self._session.get(url) as reply:
                if reply.status != 200:
                    raise UnavailableError(f"openai: fetching the image URL gave {reply.status}")
                return await read_at_most(reply, MAX_URL_IMAGE_BYTES)
        except AnswerTooLarge:
            raise BadResponseError("openai: the image at the URL is too large") from None
        except aiohttp.ClientError as error:
            raise UnavailableError(
                f"openai: fetching the image URL failed ({type(error).__name__})"
            ) from None


def _unsupported(request: GenerateRequest) -> str | None:
    if request.seed is not None:
        return "seed is not supported by the OpenAI Images API; remove it"
    if request.negative_prompt is not None:
        return "negative_prompt is not supported by the OpenAI Images API; say it in the prompt"
    return None


def _count(mapping: object, name: str) -> int:
    value = mapping.get(name) if isinstance(mapping, dict) else None
    return value if isinstance(value, int) and value >= 0 else 0


def _usage(response: openai.types.ImagesResponse) -> TokenUsage | None:
    if response.usage is None:
        return None
    raw = response.usage.to_dict()
    inputs, outputs = raw.get("input_tokens_details"), raw.get("output_tokens_details")
    return TokenUsage(
        input_text_tokens=_count(inputs, "text_tokens"),
        input_image_tokens=_count(inputs, "image_tokens"),
        output_image_tokens=_count(outputs, "image_tokens")
        if outputs
        else _count(raw, "output_tokens"),
        output_text_tokens=_count(outputs, "text_tokens"),
    )

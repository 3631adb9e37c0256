"""Google image models through the REST API with aiohttp (`provider: "gemini"`), no extra SDK.

Gemini image models via `models/{model}:generateContent` with `responseModalities: ["IMAGE"]`
and the reference images as `inlineData` parts (what keeps a character consistent across items);
Imagen models (`imagen-*`) via `models/{model}:predict`. The key comes from `GEMINI_API_KEY` (or
`GOOGLE_API_KEY`) and travels in the `x-goog-api-key` header, never in a URL or a message. The base
URL comes from `provider_options.base_url`, then `GEMINI_BASE_URL`, then Google's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..costs import flat_prices, image_price, usage_cost
from ..errors import (
    AttemptTimeoutError,
    AuthError,
    BadResponseError,
    ConfigError,
    ProviderError,
    RateLimitedError,
    UnavailableError,
)
from .base import Capabilities, GeneratedImage, GenerateRequest, ProviderConfig
from .capped import AnswerTooLarge, read_at_most
from .gemini_payloads import daily_quota, gemini_image, google_error, imagen_image
from .http import (
    MAX_ANSWER_BYTES,
    AuthLatch,
    options_error,
    read_key,
    safe_message,
    status_error,
)
from .sdk import BackgroundImport

if TYPE_CHECKING:
    import aiohttp

SDK = BackgroundImport("aiohttp", package="aiohttp", provider="gemini")
"""aiohttp, its HTTP client: imported in a thread from the moment the provider is built."""

__all__ = ["DEFAULT_MODEL", "GeminiOptions", "GeminiProvider"]

DEFAULT_MODEL = "gemini-2.5-flash-image"
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
MODELS = (
    "gemini-2.5-flash-image",
    "gemini-3-pro-image-preview",
    "imagen-4.0-generate-001",
    "imagen-4.0-fast-generate-001",
    "imagen-4.0-ultra-generate-001",
)
GEMINI_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
IMAGEN_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
MAX_REFERENCES = 14
RATIO_TOLERANCE = 0.05
"""How far (relative) a size may be from the aspect ratio it is sent as; 1408x768 is 16:9."""


class GeminiOptions(BaseModel):
    """`provider_options` for `gemini`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(default=None, pattern=r"^https?://")
    """API root, e.g. `http://127.0.0.1:8080` for the fake server (else `GEMINI_BASE_URL`)."""
    api_version: Literal["v1beta", "v1", "v1alpha"] = "v1beta"
    aspect_ratio: str | None = None
    """Aspect ratio for items without a size, e.g. `16:9`."""
    image_size: Literal["1K", "2K", "4K"] | None = None
    """Output resolution, for the models that take one."""
    person_generation: Literal["dont_allow", "allow_adult", "allow_all"] | None = None
    """Imagen only: whether people may be drawn."""
    timeout_s: float = Field(default=3600.0, gt=0)
    """aiohttp's own timeout. Keep it above the job's `limits.timeout_s`, which cuts attempts."""


class _HttpStatus(Exception):
    """An HTTP error answer, on its way to `_translate`."""

    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        super().__init__(status)
        self.status, self.headers, self.body = status, headers, body


def _ratio_for(size: str, ratios: tuple[str, ...]) -> str | None:
    width, height = (int(side) for side in size.split("x"))
    wanted = math.log(width / height)

    def distance(ratio: str) -> float:
        a, b = (int(side) for side in ratio.split(":"))
        return abs(math.log(a / b) - wanted)

    best = min(ratios, key=distance)
    return best if distance(best) <= math.log(1 + RATIO_TOLERANCE) else None


def _load_options(options: dict[str, Any], imagen: bool) -> GeminiOptions:
    try:
        parsed = GeminiOptions.model_validate(options)
    except ValidationError as error:
        raise options_error(error, GeminiOptions, "gemini") from None
    ratios = IMAGEN_RATIOS if imagen else GEMINI_RATIOS
    if parsed.aspect_ratio is not None and parsed.aspect_ratio not in ratios:
        raise ConfigError(f"provider_options.aspect_ratio: use one of {', '.join(ratios)}")
    if parsed.person_generation is not None and not imagen:
        raise ConfigError("provider_options.person_generation: only Imagen models take it")
    return parsed


class GeminiProvider:
    """Images from Gemini image models and Imagen, over the Gemini API's REST endpoints."""

    name = "gemini"
    default_model = DEFAULT_MODEL
    """The model used when the spec names none (read without building the provider)."""

    def __init__(self, config: ProviderConfig) -> None:
        self._key = read_key(config.env, KEY_VARIABLES, "gemini")
        self.model = config.model or DEFAULT_MODEL
        self.imagen = self.model.startswith("imagen")
        self.options = _load_options(config.options, self.imagen)
        root = self.options.base_url or config.env.get("GEMINI_BASE_URL") or DEFAULT_BASE_URL
        method = "predict" if self.imagen else "generateContent"
        self._url = f"{root.rstrip('/')}/{self.options.api_version}/models/{self.model}:{method}"
        self.capabilities = Capabilities(
            default_model=DEFAULT_MODEL,
            models=MODELS,
            supports_references=not self.imagen,
            prices=flat_prices("gemini"),
        )
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._auth = AuthLatch()
        SDK.start()

    def __repr__(self) -> str:
        return f"GeminiProvider(model={self.model!r}, url={self._url!r})"

    def check(self, request: GenerateRequest) -> None:
        """Raise `ConfigError` for a request the model can never accept."""
        problem = self._problem(request)
        if problem is not None:
            raise ConfigError(f"item {request.item_id}: {problem} (gemini model {self.model})")

    def _problem(self, request: GenerateRequest) -> str | None:
        for name in ("quality", "style", "negative_prompt"):
            if getattr(request, name) is not None:
                return f"{name} is not supported by Gemini image models; say it in the prompt"
        if self.imagen and (request.references or request.seed is not None):
            return "Imagen takes no reference images or seed; use a Gemini image model"
        if len(request.references) > MAX_REFERENCES:
            return f"at most {MAX_REFERENCES} reference images are accepted"
        if request.size not in (None, "auto") and self._ratio(request) is None:
            ratios = IMAGEN_RATIOS if self.imagen else GEMINI_RATIOS
            return (
                f"size {request.size} matches no aspect ratio the model makes ({', '.join(ratios)})"
            )
        return None

    def _ratio(self, request: GenerateRequest) -> str | None:
        if request.size in (None, "auto"):
            return self.options.aspect_ratio
        return _ratio_for(request.size, IMAGEN_RATIOS if self.imagen else GEMINI_RATIOS)

    async def generate(self, request: GenerateRequest) -> GeneratedImage:
        """One image for `request`, or a `ProviderError`. Safe to cancel."""
        self._auth.check()
        body = self._imagen_body(request) if self.imagen else self._gemini_body(request)
        session = await self._http()
        import aiohttp  # imported by `_http()`: a lookup in sys.modules

        try:
            payload = await self._post(session, body)
        except (
            _HttpStatus,
            AnswerTooLarge,
            aiohttp.ClientError,
            TimeoutError,
            ValueError,
            RecursionError,  # JSON nested deeper than the parser goes
        ) as error:
            failure = self._auth.note(_translate(error, self._key.get_secret_value()))
        else:
            return self._image_from(payload)
        raise failure

    async def aclose(self) -> None:
        """Close the HTTP session."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _gemini_body(self, request: GenerateRequest) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"text": request.prompt}]
        for ref in request.references:
            data = base64.b64encode(ref.data).decode("ascii")
            parts.append({"inlineData": {"mimeType": ref.mime_type, "data": data}})
        image_config = {"aspectRatio": self._ratio(request), "imageSize": self.options.image_size}
        config: dict[str, Any] = {"responseModalities": ["IMAGE"]}
        if any(image_config.values()):
            config["imageConfig"] = {k: v for k, v in image_config.items() if v is not None}
        if request.seed is not None:
            config["seed"] = request.seed
        return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}

    def _imagen_body(self, request: GenerateRequest) -> dict[str, Any]:
        parameters: dict[str, Any] = {
            "sampleCount": 1,
            "aspectRatio": self._ratio(request),
            "imageSize": self.options.image_size,
            "personGeneration": self.options.person_generation,
        }
        parameters = {k: v for k, v in parameters.items() if v is not None}
        return {"instances": [{"prompt": request.prompt}], "parameters": parameters}

    async def ready(self) -> None:
        """Once aiohttp is imported and the session made: a request can go out."""
        await self._http()

    async def _http(self) -> aiohttp.ClientSession:
        """The session, made on the first call once aiohttp's import (begun in `__init__`) is
        done; the wait is off the event loop."""
        await SDK.ready()
        import aiohttp  # imported by now

        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            raise RuntimeError("GeminiProvider is bound to another event loop; build one per loop")
        if self._session is None:
            self._loop = loop
            timeout = aiohttp.ClientTimeout(total=self.options.timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def _post(self, session: aiohttp.ClientSession, body: dict[str, Any]) -> Any:
        headers = {"x-goog-api-key": self._key.get_secret_value()}
        async with session.post(self._url, json=body, headers=headers) as reply:
            raw = await read_at_most(reply, MAX_ANSWER_BYTES)
            if reply.status >= 400:
                raise _HttpStatus(reply.status, reply.headers, raw)
        return json.loads(raw)

    def _image_from(self, payload: Any) -> GeneratedImage:
        if not isinstance(payload, dict):
            raise BadResponseError("gemini: the response is not a JSON object")
        if self.imagen:
            data, mime = imagen_image(payload)
            usage = None
            cost = image_price("gemini", self.model, None, None)
        else:
            data, mime, usage = gemini_image(payload)
            cost = usage_cost("gemini", self.model, usage) if usage else None
            if cost is None:
                cost = image_price("gemini", self.model, None, None)
        return GeneratedImage(
            data=data,
            mime_type=mime,
            model=self.model,
            usage=usage.as_dict() if usage else None,
            cost_usd=cost,
        )


def _translate(error: Exception, key: str) -> ProviderError:
    """The one place transport and HTTP failures become the project's errors."""
    import aiohttp  # imported already: the request was sent with it

    if isinstance(error, _HttpStatus):
        status, reason, message, retry_after = google_error(error.status, error.headers, error.body)
        text = f"gemini: {status} {reason}: {safe_message(message, [key])}"
        if status == 429 or reason == "RESOURCE_EXHAUSTED":
            spent = daily_quota(error.body)
            if spent is not None:  # like OpenAI's insufficient_quota: stops the provider
                quota = safe_message(spent, [key])
                return AuthError(f"{text} (daily quota {quota} used up; retrying won't help)")
            return RateLimitedError(text, retry_after=retry_after)
        if reason in ("API_KEY_INVALID", "UNAUTHENTICATED", "PERMISSION_DENIED"):
            return AuthError(text)
        return status_error(status, text, retry_after=retry_after)
    if isinstance(error, AnswerTooLarge):
        return BadResponseError(f"gemini: {error}")
    if isinstance(error, aiohttp.ServerTimeoutError | TimeoutError):
        return AttemptTimeoutError("gemini: the request timed out (aiohttp's own timeout)")
    if isinstance(error, aiohttp.ClientPayloadError):
        return BadResponseError("gemini: the response body was cut off")
    if isinstance(error, aiohttp.ClientError):
        return UnavailableError(f"gemini: connection failed ({type(error).__name__})")
    return BadResponseError("gemini: the response is not valid JSON")

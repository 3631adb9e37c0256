"""Helpers the HTTP providers share: wait headers, status mapping, image bytes, safe messages.

Nothing here does I/O. `parse_retry_after` reads the headers and bodies image APIs use to say how
long to wait; `status_error` maps an HTTP status onto the error tree; `decode_image` turns base64
text into checked image bytes (magic bytes and an intact trailer, no Pillow) or raises
`BadResponseError`; `safe_message` redacts secrets and clips what a server said.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import math
import re
import time
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, SecretStr, ValidationError

from ..errors import (
    AuthError,
    BadResponseError,
    ConfigError,
    InvalidRequestError,
    ProviderError,
    RateLimitedError,
    UnavailableError,
    redact,
)
from ..imaging import ends_whole, sniff_mime

__all__ = [
    "MAX_ANSWER_BYTES",
    "AuthLatch",
    "check_image_bytes",
    "decode_image",
    "options_error",
    "parse_duration",
    "parse_retry_after",
    "read_key",
    "safe_message",
    "sniff_mime",
    "status_error",
]

MAX_ANSWER_BYTES = 72 * 1024 * 1024
"""The largest answer body a provider's reply is read to: a 50 MB image in base64 (67 MB) with
its JSON around it. A longer (or endless) body is cut off there: a bad response, not the
machine's memory."""

MAX_MESSAGE_CHARS = 300
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_RESET_BUCKETS = ("requests", "tokens", "images")


def safe_message(text: object, secrets: Iterable[str | None]) -> str:
    """`text` as one line, with every secret redacted, clipped to a readable length."""
    line = " ".join(str(text).split())
    line = redact(line, list(secrets))
    if len(line) > MAX_MESSAGE_CHARS:
        line = line[: MAX_MESSAGE_CHARS - 3] + "..."
    return line


def options_error(error: ValidationError, model: type[BaseModel], provider: str) -> ConfigError:
    """One line naming `provider_options.<field>` and what to do, for bad provider options."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"])
    where = f"provider_options.{field}" if field else "provider_options"
    if first["type"] == "extra_forbidden":
        message = f"unknown option for {provider}; use one of {', '.join(model.model_fields)}"
    else:
        message = first["msg"].removeprefix("Value error, ")
    return ConfigError(f"{where}: {message}")


def parse_duration(text: str | None) -> float | None:
    """Seconds in a duration such as `20ms`, `1.5s`, `6m0s`, `1h2m` or a bare number of seconds."""
    if text is None:
        return None
    text = text.strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def _http_date_seconds(text: str, now: float) -> float | None:
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment.timestamp() - now)


def _reset_headers(headers: Mapping[str, str]) -> float | None:
    resets: list[float] = []
    exhausted: list[float] = []
    for bucket in _RESET_BUCKETS:
        reset = parse_duration(headers.get(f"x-ratelimit-reset-{bucket}"))
        if reset is None:
            continue
        resets.append(reset)
        if headers.get(f"x-ratelimit-remaining-{bucket}", "").strip() == "0":
            exhausted.append(reset)
    if exhausted:
        return max(exhausted)
    return min(resets) if resets else None


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The wait in seconds a response asks for, or None when it names none.

    Looks at `retry-after-ms`, then `Retry-After` (seconds or an HTTP date), then the
    `x-ratelimit-reset-*` headers (the exhausted bucket's reset if `x-ratelimit-remaining-*`
    says which one, else the earliest reset). `headers` should be case-insensitive (aiohttp's and
    httpx's are); a plain dict needs lower-case names.
    """
    milliseconds = parse_duration(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000.0
    value = headers.get("retry-after")
    if value is not None:
        seconds = parse_duration(value)
        if seconds is None:
            seconds = _http_date_seconds(value, time.time() if now is None else now)
        if seconds is not None:
            return seconds
    return _reset_headers(headers)


def status_error(status: int, message: str, *, retry_after: float | None = None) -> ProviderError:
    """The error for an HTTP status that carries no more specific meaning.

    429 -> rate limited; 408, 409 and 5xx -> unavailable (both retryable, carrying `retry_after`);
    401 and 403 -> auth; any other status -> invalid request.
    """
    if status == 429:
        return RateLimitedError(message, retry_after=retry_after)
    if status in (408, 409) or status >= 500:
        return UnavailableError(message, retry_after=retry_after)
    if status in (401, 403):
        return AuthError(message)
    return InvalidRequestError(message)


def check_image_bytes(data: bytes, source: str) -> str:
    """Return the mime type of `data`, or raise `BadResponseError` if it is no whole image.

    A cheap check without decoding: the magic bytes must name an image type and the file must end
    the way that type ends (PNG's IEND chunk, JPEG's EOI marker, WEBP's RIFF length, GIF's
    trailer), which catches truncated payloads. Pillow validates the pixels later.
    """
    mime = sniff_mime(data)
    if mime is None:
        raise BadResponseError(f"{source}: the payload is not an image ({len(data)} bytes)")
    if not ends_whole(data, mime):
        raise BadResponseError(f"{source}: the {mime} payload is truncated ({len(data)} bytes)")
    return mime


def decode_image(text: object, source: str) -> tuple[bytes, str]:
    """Decode base64 image text strictly into `(bytes, mime type)`, or raise `BadResponseError`."""
    if not isinstance(text, str) or not text:
        raise BadResponseError(f"{source}: the response holds no base64 image data")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadResponseError(
            f"{source}: the base64 image data is corrupt or truncated ({len(text)} chars)"
        ) from None
    return data, check_image_bytes(data, source)


def read_key(env: Mapping[str, str], names: tuple[str, ...], provider: str) -> SecretStr:
    """The first of the variables `names` that holds a key, or a `ConfigError` naming them."""
    for name in names:
        if env.get(name, "").strip():
            return SecretStr(env[name].strip())
    wanted = names[0] + "".join(f" (or {name})" for name in names[1:])
    raise ConfigError(
        f"{provider}: {wanted} is not set; export your API key, or run offline on the mock "
        "provider",
        option="provider",
    )


class AuthLatch:
    """Once the key is refused, later calls fail at once instead of spending requests."""

    def __init__(self) -> None:
        self.failure: AuthError | None = None

    def check(self) -> None:
        """Raise the remembered refusal, if there is one."""
        if self.failure is not None:
            raise AuthError(self.failure.message)

    def note(self, error: ProviderError) -> ProviderError:
        """Remember `error` if it is a refusal; return it for raising."""
        if isinstance(error, AuthError):
            self.failure = error
        return error

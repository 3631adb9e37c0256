"""The signing secret and the Standard Webhooks headers.

The secret is read from the environment variable the spec names, when a job is checked or run;
it is never stored, logged or put in an error message. A message is signed as the spec says:
HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}` with the base64-decoded part of the
secret after `whsec_`, sent as `webhook-signature: v1,<base64 signature>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from ..errors import ConfigError
from .models import WebhookSpec

__all__ = ["PREFIX", "load_secret", "signed_headers"]

PREFIX = "whsec_"


def load_secret(spec: WebhookSpec, env: Mapping[str, str]) -> bytes:
    """The key bytes of the secret in `$secret_env`; `ConfigError` (never showing the value)
    if it is unset or not a `whsec_` secret."""
    where = f"webhook.secret_env: ${spec.secret_env}"
    value = env.get(spec.secret_env, "")
    if not value:
        raise ConfigError(
            f"{where} is not set; set it to the receiver's signing secret (whsec_...)"
        )
    if not value.startswith(PREFIX):
        raise ConfigError(f"{where} does not hold a Standard Webhooks secret (whsec_...)")
    try:
        key = base64.b64decode(value.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 16:
        raise ConfigError(
            f"{where} is not a usable secret: after whsec_ it must be base64 of at least "
            "16 bytes (for example `whsec_$(openssl rand -base64 32)`)"
        )
    return key


def signed_headers(key: bytes, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """The headers of one POST of `body`: id, timestamp (whole seconds), signature, type."""
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{base64.b64encode(digest).decode()}",
        "content-type": "application/json",
    }

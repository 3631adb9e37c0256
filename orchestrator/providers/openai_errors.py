"""The one place the OpenAI SDK's exceptions become the project's errors (the tree is in `errors`).

    APITimeoutError                         AttemptTimeoutError
    APIConnectionError                      UnavailableError
    APIStatusError  400, moderation codes   ContentRejectedError
                    insufficient_quota      AuthError (billing; retrying won't help)
                    any other status        `http.status_error`: 429, 5xx, 401/403, other 4xx
    APIResponseValidationError, ValueError, RecursionError (JSON nested too deep)
                                            BadResponseError
    an answer over the cap (`capped`)       BadResponseError
    anything else                           UnavailableError

Messages are scrubbed of the key; no SDK type leaves the OpenAI provider.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import (
    AttemptTimeoutError,
    AuthError,
    BadResponseError,
    ContentRejectedError,
    ProviderError,
    UnavailableError,
)
from .capped import AnswerTooLarge
from .http import parse_retry_after, safe_message, status_error

if TYPE_CHECKING:
    import openai

__all__ = ["translate"]

_REJECTED_CODES = frozenset({"moderation_blocked", "content_policy_violation"})


def translate(error: Exception, key: str) -> ProviderError:
    """The one place SDK exceptions become the project's errors. Nothing here holds the key."""
    import openai  # imported already: `error` came from it (and this module loads without it)

    if isinstance(error, openai.APITimeoutError):
        return AttemptTimeoutError("openai: the request timed out (the SDK's own timeout)")
    for too_large in (error, error.__cause__):  # read with a cap (see `capped`)
        if isinstance(too_large, AnswerTooLarge):
            return BadResponseError(f"openai: {too_large}")
    if isinstance(error, openai.APIConnectionError):
        cause = type(error.__cause__).__name__ if error.__cause__ else "no answer"
        return UnavailableError(f"openai: connection failed ({cause})")
    if isinstance(error, openai.APIStatusError):
        return _status_failure(error, key)
    if isinstance(error, openai.APIResponseValidationError | ValueError | RecursionError):
        return BadResponseError("openai: the response is not valid JSON of the expected shape")
    return UnavailableError(f"openai: {type(error).__name__}: {safe_message(error, [key])}")


def _status_failure(error: openai.APIStatusError, key: str) -> ProviderError:
    body = error.body if isinstance(error.body, dict) else {}
    said = safe_message(body.get("message") or error.message, [key])
    status, code = error.status_code, error.code
    label = code or error.type or "error"
    message = f"openai: {status} {label}: {said}"
    if status == 400 and (code in _REJECTED_CODES or "safety system" in said):
        return ContentRejectedError(message)
    if code == "insufficient_quota":
        return AuthError(message + " (billing: add credit or raise the quota; retrying won't help)")
    return status_error(status, message, retry_after=parse_retry_after(error.response.headers))

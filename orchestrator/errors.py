"""The one error tree of imagebatch.

```
ImageBatchError
├── ConfigError                 bad input: a spec, a flag, an option. Says what to fix. Exit 2.
│   └── NotFoundError           a job or item id that does not exist. Exit 2.
├── KeyConflictError            another job with the same key is active. Exit 5.
├── StorageError                the workspace cannot be written: the run stops, resumable. Exit 7.
│   └── DiskFullError           its disk is full, or the user's quota on it is used up.
├── JournalError                the journal refused a change or is unreadable.
│   ├── TransitionError         a state change the transition table does not allow.
│   └── LeaseLostError          a runner's lock was taken over or cleared: it must stop. Exit 6.
└── ProviderError               one attempt at a provider failed. Carries `kind`.
    ├── RetryableError          worth another attempt; may carry `retry_after` (seconds).
    │   ├── RateLimitedError        429 / RESOURCE_EXHAUSTED
    │   ├── UnavailableError        5xx, connection reset, overloaded
    │   ├── AttemptTimeoutError     the per-attempt timeout ran out
    │   └── BadResponseError        malformed JSON, truncated base64, bytes that are no image
    └── PermanentError          another attempt would fail the same way.
        ├── ContentRejectedError    moderation / safety block
        ├── InvalidRequestError     the API refused the parameters
        └── AuthError               missing, wrong or unauthorised key
```

Providers translate their SDK's exceptions into this tree in one function each; SDK exception
types never leave a provider. Messages never contain secrets (see `redact`).
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

__all__ = [
    "AttemptTimeoutError",
    "AuthError",
    "BadResponseError",
    "ConfigError",
    "ContentRejectedError",
    "DiskFullError",
    "ImageBatchError",
    "InvalidRequestError",
    "JournalError",
    "KeyConflictError",
    "LeaseLostError",
    "NotFoundError",
    "PermanentError",
    "ProviderError",
    "RateLimitedError",
    "RetryableError",
    "StorageError",
    "TransitionError",
    "UnavailableError",
    "UnusableFileError",
    "disk_full",
    "redact",
    "storage_error",
    "storage_errors",
]


class ImageBatchError(Exception):
    """Base of every error imagebatch raises on purpose.

    Messages speak in the user's terms (a spec field, a job, a key), never in one front end's
    words; `option` names the setting that fixes it, so each front end can add how to set it
    there (the CLI adds its flag, and the command to type for conflicts and lost locks).
    """

    exit_code: int = 1

    def __init__(self, message: str = "", *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class _UserFacing(ImageBatchError):
    """An error the user caused or must decide about: IPython and Jupyter show its one line,
    not a traceback through imagebatch's insides."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class ConfigError(_UserFacing):
    """Bad input from the user. The message names the field and says how to fix it."""

    exit_code = 2


class NotFoundError(ConfigError):
    """A job or item id that the journal does not know."""


class KeyConflictError(_UserFacing):
    """Another job with the same key is active."""

    exit_code = 5

    def __init__(self, message: str, *, key: str, job_id: str, live: bool = False) -> None:
        super().__init__(message)
        self.key = key
        self.job_id = job_id
        self.live = live
        """A live process holds the key (else the key's job is unfinished and resumable)."""


class StorageError(_UserFacing):
    """The workspace cannot be written: its disk is full, its file system went read-only (as
    Linux does to a disk that reported errors), the system refuses imagebatch the folder, or the
    disk failed a write. No image, record or event can be kept, so a run stops at once (a paid
    request whose image could not be kept is not followed by more); its job stays resumable
    once the cause is fixed."""

    exit_code = 7


class DiskFullError(StorageError):
    """The disk that holds the workspace is full, or the user's quota on it is used up."""


_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_READ_ONLY = frozenset({errno.EROFS})
_REFUSED = frozenset({errno.EACCES, errno.EPERM})
_FAILED = frozenset({errno.EIO})
# SQLite's primary result codes (an extended code's low byte): SQLITE_READONLY, SQLITE_IOERR,
# SQLITE_FULL
_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL = 8, 10, 13
_SQLITE_READS = (_SQLITE_IOERR | 1 << 8, _SQLITE_IOERR | 2 << 8)
"""SQLITE_IOERR_READ and SQLITE_IOERR_SHORT_READ: the disk failed a read, not a write."""


def disk_full(folder: object, error: BaseException) -> DiskFullError:
    """The `DiskFullError` for `error` (ENOSPC, EDQUOT or SQLite's SQLITE_FULL) at `folder`."""
    return DiskFullError(f"the disk holding {folder} is full ({_said(error)}); free some space")


def storage_error(folder: object, error: BaseException) -> StorageError | None:
    """The `StorageError` that `error`, raised by a write (or a journal read) under `folder`,
    means; None when it is none of those (an error of one file, not of the workspace)."""
    number = getattr(error, "errno", None)
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if number in _FULL or primary == _SQLITE_FULL:
        return disk_full(folder, error)
    said = _said(error)
    if number in _READ_ONLY or primary == _SQLITE_READONLY:
        return StorageError(
            f"the file system holding {folder} is read-only ({said}); make it writable (a "
            "disk that reported errors is often turned read-only: see the system log)"
        )
    if number in _REFUSED:
        return StorageError(f"imagebatch may not write in {folder} ({said}); allow it to")
    if number in _FAILED or primary == _SQLITE_IOERR:
        what = "read" if code in _SQLITE_READS else "write"
        return StorageError(f"the disk holding {folder} failed a {what} ({said}); check the disk")
    return None


@contextmanager
def storage_errors(folder: object) -> Iterator[None]:
    """Within the block, an error that means the workspace under `folder` cannot be written
    (see `storage_error`) is raised as that `StorageError`; any other goes on as it is."""
    try:
        yield
    except Exception as error:
        unwritable = storage_error(folder, error)
        if unwritable is None:
            raise
        raise unwritable from None


def _said(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error)


class UnusableFileError(ImageBatchError):
    """A file imagebatch was to read is not a regular file it may read whole: a pipe or a
    device (reading it could wait forever), or larger than the limit."""

    kind = "unusable_file"

    def __init__(self, message: str = "", *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large
        """It is a regular file, only larger than the limit."""


class JournalError(ImageBatchError):
    """The journal refused a change or could not be read."""


class TransitionError(JournalError):
    """A state change that the transition table does not allow."""


class LeaseLostError(JournalError):
    """A runner wrote with a lease (lock token) that is no longer current: another process took
    the job's key over, or someone cleared the lock. The runner stops without writing more."""

    exit_code = 6

    def __init__(self, message: str, *, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class ProviderError(ImageBatchError):
    """One attempt at a provider failed. `kind` is a stable short name for reports."""

    kind: str = "provider_error"
    retryable: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class RetryableError(ProviderError):
    """Another attempt may succeed."""

    kind = "retryable"
    retryable = True


class RateLimitedError(RetryableError):
    """The provider said 429 / RESOURCE_EXHAUSTED; `retry_after` is its wait, if it gave one."""

    kind = "rate_limited"


class UnavailableError(RetryableError):
    """5xx, overloaded, connection refused or reset."""

    kind = "unavailable"


class AttemptTimeoutError(RetryableError):
    """The per-attempt timeout ran out before the provider answered."""

    kind = "timeout"


class BadResponseError(RetryableError):
    """The provider answered with something that is not a usable image."""

    kind = "bad_response"


class PermanentError(ProviderError):
    """Another attempt would fail the same way."""

    kind = "permanent"


class ContentRejectedError(PermanentError):
    """The provider's moderation or safety filter refused the prompt or the image."""

    kind = "content_rejected"


class InvalidRequestError(PermanentError):
    """The provider refused the request's parameters."""

    kind = "invalid_request"


class AuthError(PermanentError):
    """The key is missing, wrong, or not allowed to use this model."""

    kind = "auth"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Return `text` with every secret (and any 8+ character tail of it) replaced by `***`."""
    for secret in secrets:
        if not secret or len(secret) < 6:
            continue
        text = text.replace(secret, "***")
        for tail in (secret[-8:], secret[:8]):
            if len(tail) >= 8:
                text = text.replace(tail, "***")
    return text

"""The command line's words for an error: the core says what is wrong in the user's terms, and
the CLI adds the flag that sets the named option, or the command to type next."""

from __future__ import annotations

import shlex

from ..errors import ImageBatchError, KeyConflictError, LeaseLostError

__all__ = ["describe"]

FLAGS = {
    "workspace": "--workspace DIR",
    "format": "--format json|jsonl|text",
    "allow_unknown_model": "--allow-unknown-model",
    "provider": "--provider mock",
}


def describe(error: ImageBatchError) -> str:
    """The one line the CLI prints for `error`."""
    text = str(error)
    if isinstance(error, KeyConflictError):
        job, key = error.job_id, shlex.quote(error.key)
        if error.live:
            return (
                f"{text}: `imagebatch watch {job}` follows it, `imagebatch cancel {job}` ends "
                f"it, `imagebatch clear-lock {key}` if that process is gone"
            )
        return f"{text}: `imagebatch resume {job}` continues it, `imagebatch cancel {job}` ends it"
    if isinstance(error, LeaseLostError):
        return f"{text}; `imagebatch status {error.job_id}` shows where it stands"
    if error.option == "clear_lock":
        return f"{text} (`imagebatch clear-lock KEY`)"
    if error.option == "list_jobs":
        return f"{text}; `imagebatch list` shows the jobs"
    name, _, value = (error.option or "").partition(":")
    if value:
        return f"{text} (--{name.replace('_', '-')} {value})"
    if name in FLAGS:
        return f"{text} ({FLAGS[name]})"
    return text

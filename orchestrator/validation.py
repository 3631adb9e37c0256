"""What pydantic's checks become for a user: a field check for regular expressions, and a
spec's `ValidationError` said in one line that names the first bad field and what to do.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

__all__ = ["check_regex", "format_validation_error"]


def check_regex(value: str | None) -> str | None:
    """A pydantic field check: `value` must compile as a regular expression."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"not a valid regular expression ({error})") from None
    return value


def format_validation_error(error: ValidationError, source: str) -> str:
    """One line naming the first bad field and what to do about it."""
    problems = error.errors()
    # A bad item also makes pydantic call `items` too short: only count the real problem.
    locs = [problem["loc"] for problem in problems]
    problems = [
        problem
        for problem in problems
        if problem["type"] != "too_short"
        or not any(loc[: len(problem["loc"])] == problem["loc"] != loc for loc in locs)
    ]
    # A misspelt field also shows up as the real one "missing": name the misspelling first.
    first = min(problems, key=lambda problem: problem["type"] != "extra_forbidden")
    where = _format_loc(first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field; check its spelling"
    elif first["type"] == "missing":
        message = "required field is missing"
    elif first["type"] == "too_short":
        message = "must not be empty; add at least one entry"
    more = len(problems) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    if not where and _NAMES_FIELD.match(message):
        return f"{source}: {message}{suffix}"  # a whole-spec check that names its field
    return f"{source}: {where or 'spec'}: {message}{suffix}"


_NAMES_FIELD = re.compile(r"^(items\[\d+\]\.[a-z_]+|anchor):")


def _format_loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text

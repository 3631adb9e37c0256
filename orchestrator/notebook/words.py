"""What a batch's header says: the job's title, what a click's request did, and how the images
a retry started ended. Plain functions of the records and answers; the view says them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from ..feed import ItemRow
from ..handle import Retried
from ..records import JobRecord

__all__ = ["cancel_items_words", "cancel_words", "retried_words", "retry_words", "title"]


def title(job: JobRecord) -> str:
    """`story · job story-1-ab12cd · openai gpt-image-1` (the name, else the key)."""
    config = job.config
    name = config.name or config.key
    model = f" {config.model}" if config.model else ""
    return f"{name} · job {job.id} · {config.provider}{model}"


def retry_words(retried: Retried) -> str:
    """What Retry did: which images it retries, and where."""
    if not retried.ids:
        return "nothing to retry: no image failed or was cancelled"
    what = retried.ids[0] if len(retried.ids) == 1 else f"{len(retried.ids)} images"
    where = "here" if retried.here else "in the process running the job"
    return f"retrying {what} {where}"


def cancel_items_words(item_ids: list[str], asked: list[str]) -> str:
    """What a card's Cancel did; `asked` are those of `item_ids` that were still unfinished."""
    if not asked:
        return f"{', '.join(item_ids)} had already finished: nothing to cancel"
    return f"cancelling {', '.join(asked)}"


def cancel_words(job: JobRecord) -> str:
    """What Cancel job did, from the job as the request left it."""
    if job.cancel_requested:
        return "cancel requested: nothing new starts, running images stop"
    return f"job {job.status}"


def retried_words(retried: list[str], rows: Mapping[str, ItemRow]) -> str:
    """How the images a retry started ended (`retried page-07: completed`)."""
    ended = Counter(str(rows[item_id].status) for item_id in retried)
    if len(retried) == 1:
        return f"retried {retried[0]}: {next(iter(ended))}"
    counts = ", ".join(f"{count} {status}" for status, count in ended.items())
    return f"retried {len(retried)} images: {counts}"

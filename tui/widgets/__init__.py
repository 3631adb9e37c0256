"""The app's widgets: each owns its state and its messages."""

from .event_log import EventLog
from .items_table import ItemsTable
from .jobs_table import JobLine, JobsTable
from .preview import Preview, SixelPreview
from .progress import JobProgress

__all__ = [
    "EventLog",
    "ItemsTable",
    "JobLine",
    "JobProgress",
    "JobsTable",
    "Preview",
    "SixelPreview",
]

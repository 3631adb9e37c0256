"""The app's screens: each composes widgets and hands key presses to workers."""

from .confirm import ConfirmScreen
from .help import HelpScreen
from .job import JobScreen
from .jobs import JobsScreen
from .new_batch import NewBatchScreen

__all__ = ["ConfirmScreen", "HelpScreen", "JobScreen", "JobsScreen", "NewBatchScreen"]

"""Messages between the app's parts. Those that arrive at a high rate coalesce: a newer one
replaces one still waiting in the queue (`can_replace`, latest wins), so a burst of a thousand
events costs one redraw."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from .widgets.jobs_table import JobLine

__all__ = ["JobChanged", "JobLaunched", "JobsListed", "RunStopped"]


class JobChanged(Message):
    """The job screen's feed has changes to draw (the screen takes them from the feed)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JobChanged)


@dataclass
class JobsListed(Message):
    """The workspace's jobs as just read; a newer list replaces one not drawn yet."""

    lines: list[JobLine]

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JobsListed)


@dataclass
class JobLaunched(Message):
    """This app started running a job: the app keeps watch for how its run ends."""

    job_id: str


@dataclass
class RunStopped(Message):
    """This app's run of a job stopped on an error (a full disk, a lost lock): the job is
    resumable, and its screen stops showing it as running."""

    job_id: str
    why: str
    """The advice, as the notification says it."""
